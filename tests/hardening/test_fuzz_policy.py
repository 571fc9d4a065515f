"""Fuzzing the Postfix policy parser (``mailmoat.policy.server``).

Properties (Hypothesis; budget from the profile in ``conftest.py``):

- ``parse_request`` on any bytes returns attributes or raises
  ``RequestError``; attributes written as Postfix writes them parse back
  unchanged;
- ``format_action`` turns any text into exactly one ``action=`` line and the
  blank line that ends the answer: a decision's text can never add a line;
- a real policy front fed any bytes answers each complete request with one
  well-formed answer or closes the connection, and answers the next client.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailmoat.config import (
    CheckSettings,
    Config,
    DnsConfig,
    PolicyConfig,
    StatsConfig,
    StoreConfig,
)
from mailmoat.policy.server import PolicyServer, RequestError, format_action, parse_request
from mailmoat.runtime import Runtime


@given(st.binary(max_size=1000))
def test_any_bytes_parse_or_raise_request_error(block: bytes) -> None:
    try:
        attributes = parse_request(block)
    except RequestError:
        return
    assert all(name and "\n" not in name for name in attributes)


names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=20)
values = st.text(max_size=60).filter(lambda v: "\n" not in v and not v.endswith("\r"))


@given(st.dictionaries(names, values, max_size=20))
def test_attributes_parse_back_unchanged(attributes: dict[str, str]) -> None:
    block = "".join(f"{name}={value}\n" for name, value in attributes.items())
    assert parse_request(block.encode("utf-8", "surrogateescape")) == attributes


@given(st.text(max_size=200))
def test_an_action_is_always_one_line(action: str) -> None:
    answer = format_action(action)
    assert answer.startswith(b"action=") and answer.endswith(b"\n\n")
    assert b"\n" not in answer[:-2] and b"\r" not in answer


REQUEST = (
    b"request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n"
    b"client_address=192.0.2.10\nclient_name=mx.sender.test\nhelo_name=mx.sender.test\n"
    b"sender=alice@sender.test\nrecipient=bob@example.org\n\n"
)
policy_streams = st.lists(
    st.sampled_from([REQUEST, b"\n", b"\r\n", b"=", b"name=value\n", b"\x00", b"\xff"])
    | st.binary(max_size=40),
    max_size=10,
).map(b"".join)


class PolicyThread:
    """A real policy front on loopback, on its own event loop in a thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.server: PolicyServer | None = None
        self.runtime: Runtime | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._start())
        self._ready.set()
        self.loop.run_forever()

    async def _start(self) -> None:
        off = CheckSettings(enabled=False)
        config = Config(
            policy=PolicyConfig(listen="127.0.0.1:0", timeout=5),
            store=StoreConfig(url="sqlite://:memory:"),
            stats=StatsConfig(enabled=False),
            dns=DnsConfig(nameserver="127.0.0.1:9", timeout=0.2),
            checks={name: off for name in ("helo", "spf", "rdns", "greylist")},
        )
        self.runtime = await Runtime.open(config, "policy")
        self.server = PolicyServer(self.runtime)
        _host, self.port = await self.server.start()

    async def _stop(self) -> None:
        assert self.server is not None and self.runtime is not None
        await self.server.stop(1)
        await self.runtime.close()

    def __enter__(self) -> PolicyThread:
        self._thread.start()
        assert self._ready.wait(30)
        return self

    def __exit__(self, *_exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


@pytest.fixture(scope="module")
def policy_front() -> Iterator[PolicyThread]:
    with PolicyThread() as running:
        yield running


def exchange(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


@given(policy_streams)
def test_a_real_policy_front_answers_any_bytes_sanely(
    policy_front: PolicyThread, stream: bytes
) -> None:
    answer = exchange(policy_front.port, stream)
    assert answer == b"" or answer.endswith(b"\n\n"), (stream, answer)
    answers = answer.split(b"\n\n")[:-1]
    requests = len([b for b in stream.replace(b"\r\n", b"\n").split(b"\n\n") if b.strip()])
    assert len(answers) <= requests, (stream, answer)
    for line in answers:
        assert line.startswith(b"action=") and b"\n" not in line, (stream, answer)
    assert exchange(policy_front.port, REQUEST).startswith(b"action="), stream
