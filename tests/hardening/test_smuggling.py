"""SMTP smuggling battery: no end-of-data variant splits a message upstream.

A smuggling attack hides a second transaction after a line ending that one
server takes for the end of data and the next does not. Every variant here
(bare LF, bare CR, NUL, mixed endings around the dot) is sent inside one
message, pipelined (the whole transaction in one write, the smuggled
commands in the same write as the variant) and in lockstep (each command on
its own, the smuggled commands after a pause). Against a real Postfix
upstream, which accepts mail for both ``bob`` and ``victim``:

- the gateway does not answer the smuggled commands (it is still in DATA);
- Postfix delivers exactly one message, from ``alice``, to ``bob``; the
  smuggled text is inside it; ``victim`` never gets a message.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from gateway_harness import GatewayThread
from servers import Postfix
from wire_client import RawClient

pytestmark = pytest.mark.integration

# Every end-of-data variant that is not the real CRLF . CRLF.
VARIANTS: dict[str, bytes] = {
    "LF.LF": b"\n.\n",
    "LF.CRLF": b"\n.\r\n",
    "CRLF.LF": b"\r\n.\n",
    "CR.CR": b"\r.\r",
    "CR.CRLF": b"\r.\r\n",
    "CRLF.CR": b"\r\n.\r",
    "LF.CR": b"\n.\r",
    "CR.LF": b"\r.\n",
    "CRLF-NUL.CRLF": b"\r\n\x00.\r\n",
    "CRLF.NUL-CRLF": b"\r\n.\x00\r\n",
    "CRLF.CR-NUL-LF": b"\r\n.\r\x00\n",
    "CRLF.CRCRLF": b"\r\n.\r\r\n",
    "CRCRLF.CRCRLF": b"\r\r\n.\r\r\n",
    "CRLF-CR.CRLF": b"\r\n\r.\r\n",
    "CRLF-SP.CRLF": b"\r\n .\r\n",
    "CRLF.SP-CRLF": b"\r\n. \r\n",
    "CRLF.TAB-CRLF": b"\r\n.\t\r\n",
    "LF-CR.LF-CR": b"\n\r.\n\r",
    "LFLF.LFLF": b"\n\n.\n\n",
    "CRLF..CRLF": b"\r\n..\r\n",
    "CRLF.VT-CRLF": b"\r\n.\x0b\r\n",
    "CRLF.FF-CRLF": b"\r\n.\x0c\r\n",
    "LF.LF-CRLF": b"\n.\n\r\n",
    "CRLF-LF.LF": b"\r\n\n.\n",
}
SMUGGLED_COMMANDS = [
    b"MAIL FROM:<smuggler@evil.test>\r\n",
    b"RCPT TO:<victim@example.org>\r\n",
    b"DATA\r\n",
]
SMUGGLED_MESSAGE = b"From: smuggler@evil.test\r\nSubject: smuggled\r\n\r\nbad\r\n"
FIRST = (
    b"From: Alice <alice@sender.test>\r\n"
    b"To: bob@example.org\r\n"
    b"Subject: first\r\n"
    b"Date: Sat, 28 Nov 2026 10:00:00 +0000\r\n"
    b"Message-ID: <first@sender.test>\r\n"
    b"\r\n"
    b"hello"
)
ENVELOPE = [
    b"MAIL FROM:<alice@sender.test>\r\n",
    b"RCPT TO:<bob@example.org>\r\n",
    b"DATA\r\n",
]


def test_no_variant_is_the_real_end_of_data() -> None:
    for label, variant in VARIANTS.items():
        assert b"\r\n.\r\n" not in b"hello" + variant, label


@pytest.fixture(scope="module")
def relay(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[GatewayThread, Postfix]]:
    postfix = Postfix(virtual_mailboxes=["bob@example.org", "victim@example.org"])
    postfix.start()
    try:
        overrides: dict[str, dict[str, object]] = {
            "relay": {"domains": ["example.org"], "upstream": postfix.address},
            "checks": {name: {"enabled": False} for name in ("helo", "spf", "greylist")},
        }
        with GatewayThread(tmp_path_factory.mktemp("smuggling"), overrides) as gateway:
            yield gateway, postfix
    finally:
        postfix.stop()


def silent(client: RawClient, seconds: float = 0.3) -> bool:
    """Nothing arrives from the gateway for ``seconds``."""
    client.sock.settimeout(seconds)
    try:
        data = client.sock.recv(65536)
    except TimeoutError:
        return True
    finally:
        client.sock.settimeout(10)
    client.buffer += data
    return False


def smuggle_pipelined(client: RawClient, variant: bytes) -> str:
    client.send(b"".join(ENVELOPE))
    replies = [client.reply() for _ in ENVELOPE]
    assert [r[:3] for r in replies] == ["250", "250", "354"], replies
    client.send(
        FIRST + variant + b"".join(SMUGGLED_COMMANDS) + SMUGGLED_MESSAGE + b".\r\n" + b"QUIT\r\n"
    )
    final: str = client.reply()
    return final


def smuggle_lockstep(client: RawClient, variant: bytes) -> str:
    for command in ENVELOPE:
        reply = client.command(command.rstrip(b"\r\n"))
        assert reply[:3] in ("250", "354"), reply
    client.send(FIRST + variant)
    for command in SMUGGLED_COMMANDS:
        time.sleep(0.05)
        client.send(command)
        assert silent(client, 0.15), f"the gateway answered a smuggled {command!r}"
    client.send(SMUGGLED_MESSAGE + b".\r\n")
    final: str = client.reply()
    client.command("QUIT")
    return final


def delivered_count(postfix: Postfix, address: str) -> int:
    return len(postfix.maildir_messages(address))


@pytest.mark.parametrize("mode", ["pipelined", "lockstep"])
@pytest.mark.parametrize("label", sorted(VARIANTS))
def test_a_smuggled_message_never_reaches_the_upstream_on_its_own(
    relay: tuple[GatewayThread, Postfix], label: str, mode: str
) -> None:
    gateway, postfix = relay
    before = delivered_count(postfix, "bob@example.org")
    client = RawClient(gateway.port)
    try:
        assert client.command("EHLO client.sender.test").startswith("250")
        send: Callable[[RawClient, bytes], str] = (
            smuggle_pipelined if mode == "pipelined" else smuggle_lockstep
        )
        final = send(client, VARIANTS[label])
    except (TimeoutError, ConnectionError) as exc:
        final = f"closed: {exc}"
    finally:
        client.close()
    if final.startswith("250"):
        deadline = time.monotonic() + 20
        while delivered_count(postfix, "bob@example.org") == before:
            assert time.monotonic() < deadline, postfix.log_text()[-3000:]
            time.sleep(0.05)
        messages = postfix.maildir_messages("bob@example.org")[before:]
        assert len(messages) == 1, label
        assert b"Subject: first" in messages[0] and b"Subject: smuggled" in messages[0]
        assert b"Return-Path: <alice@sender.test>" in messages[0]
    else:
        # A refusal (say 554 for a bare LF under "reject") is fine; no
        # message may come of it.
        assert final[:1] in ("4", "5") or final.startswith("closed"), final
        time.sleep(0.3)
        assert delivered_count(postfix, "bob@example.org") == before
    time.sleep(0.1)
    assert delivered_count(postfix, "victim@example.org") == 0, label
