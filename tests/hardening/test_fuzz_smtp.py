"""Fuzzing the SMTP command parser: the path and parameter parsers with any
text, and a real gateway with any sequence of command lines.

Properties (Hypothesis; budget from the profile in ``conftest.py``):

- ``parse_path`` returns an address free of controls, ``<``, ``>`` and
  spaces, or raises ``AddressError``; ``_split_path`` and ``parse_xforward``
  raise nothing but ``ValueError``;
- a client sending any command lines in lockstep gets exactly one
  well-formed reply per line (a 2xx-5xx code, an enhanced status code after
  the greeting), never ``451 4.3.0`` (an exception in the server), and
  unless the server hung up, ``RSET`` and ``NOOP`` still answer ``250``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway_harness import GatewayThread
from mailmoat.core.relay import AddressError, parse_path
from mailmoat.smtp.grammar import split_path as _split_path
from mailmoat.smtp.xforward import parse_xforward
from wire_client import RawClient

pytestmark = pytest.mark.integration

PATH_PIECES = ["<", ">", "@", "%", "!", ":", ",", ".", '"', "\\", " ", "\t", "\x00", "\r", "\n"]
path_text = st.one_of(
    st.text(max_size=80),
    st.lists(
        st.sampled_from(PATH_PIECES) | st.text(alphabet="abcXYZ09-_[]é", max_size=6), max_size=30
    ).map("".join),
)


@given(path_text, st.booleans())
def test_parse_path_returns_a_clean_address_or_raises_address_error(
    text: str, allow_null: bool
) -> None:
    try:
        address = parse_path(text, allow_null=allow_null)
    except AddressError:
        return
    assert not re.search(r"[\x00-\x1f<> ]", address), address
    assert address or allow_null


@given(path_text)
def test_split_path_never_raises(text: str) -> None:
    path, params = _split_path(text)
    assert isinstance(path, str) and all(isinstance(p, str) and p for p in params)


@given(st.text(max_size=200))
def test_parse_xforward_raises_only_value_error(text: str) -> None:
    try:
        found = parse_xforward(text)
    except ValueError:
        return
    assert found and all(name.isupper() for name in found)


VERBS = [
    "HELO",
    "EHLO",
    "MAIL",
    "RCPT",
    "RSET",
    "NOOP",
    "VRFY",
    "EXPN",
    "HELP",
    "XFORWARD",
    "AUTH",
    "BDAT",
    "ETRN",
    "mail",
    "rcpt",
    "ehlo",
]
ARGS = [
    "FROM:<alice@sender.test>",
    "TO:<bob@example.org>",
    "TO:<bob@elsewhere.test>",
    "FROM:<>",
    "FROM:<a@b> SIZE=99999999999999999999",
    "FROM:<a@b> BODY=8BITMIME SMTPUTF8",
    "TO:<@a,@b:bob@example.org>",
    'TO:<"bob@x"@example.org>',
    "client.sender.test",
    "[127.0.0.1]",
    "ADDR=192.0.2.1 NAME=x",
]
# Lines that change the dialogue's mode (DATA, STARTTLS) or are HTTP get
# their own batteries; this one stays in command mode.
MODE_CHANGING = re.compile(
    rb"^\s*(DATA|STARTTLS|GET|POST|HEAD|PUT|CONNECT|OPTIONS|USER|PASS)\b", re.I
)
command_line = (
    st.one_of(
        st.tuples(st.sampled_from(VERBS), st.sampled_from(ARGS) | st.text(max_size=60)).map(
            lambda pair: f"{pair[0]} {pair[1]}".encode("utf-8", "surrogatepass")
        ),
        st.binary(max_size=80),
    )
    .map(lambda line: line.replace(b"\r", b"").replace(b"\n", b""))
    .filter(lambda line: not MODE_CHANGING.match(line))
)
REPLY = re.compile(r"^[2-5][0-9][0-9][ -]")
ENHANCED = re.compile(r"^[2-5][0-9][0-9][ -][245]\.[0-9]{1,3}\.[0-9]{1,3}")


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayThread]:
    overrides: dict[str, dict[str, object]] = {
        "checks": {name: {"enabled": False} for name in ("helo", "spf", "greylist", "rdns")},
        "protocol": {"hard_error_limit": 1000},
    }
    with GatewayThread(tmp_path_factory.mktemp("fuzz-smtp"), overrides) as running:
        yield running


def reply_to(client: RawClient, line: bytes) -> str:
    try:
        reply: str = client.command(line)
        return reply
    except ConnectionError:
        return ""


@given(st.lists(command_line, min_size=1, max_size=12))
def test_any_command_lines_get_one_well_formed_reply_each(
    gateway: GatewayThread, lines: list[bytes]
) -> None:
    client = RawClient(gateway.port)
    try:
        assert client.banner.startswith("220 ")
        for line in lines:
            reply = reply_to(client, line)
            assert reply, f"connection closed without a reply to {line!r}"
            for reply_line in reply.split("\n"):
                assert REPLY.match(reply_line), (line, reply)
            last = reply.split("\n")[-1]
            if not last.startswith("250-") and not re.match(r"^2[0-9][0-9] ", last):
                assert ENHANCED.match(last), (line, reply)
            assert not reply.startswith("451 4.3.0"), (line, reply)
            if reply[:3] in ("221", "421", "521"):
                return
        assert client.command("RSET").startswith("250"), lines
        assert client.command("NOOP").startswith("250"), lines
    finally:
        client.close()
