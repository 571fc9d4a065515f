"""SMTPUTF8: an address that is not valid UTF-8 is refused, and a non-ASCII
address never goes to an upstream that did not offer SMTPUTF8 (RFC 6531
3.2: 553 5.6.7, nothing sent).

Before the fix both were accepted: the bytes were passed on as they came,
and the upstream got a non-ASCII MAIL FROM without SMTPUTF8.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway_harness import GatewayThread
from servers import SmtpSink
from wire_client import RawClient

pytestmark = pytest.mark.integration


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as running:  # offers no SMTPUTF8
        yield running


@pytest.fixture
def gateway(tmp_path: Path, sink: SmtpSink) -> Iterator[GatewayThread]:
    with GatewayThread(tmp_path, {"relay": {"upstream": sink.address}}) as running:
        yield running


def _client(gateway: GatewayThread) -> RawClient:
    client = RawClient(gateway.port)
    assert "SMTPUTF8" in client.command("EHLO client.sender.test")
    return client


@pytest.mark.parametrize(
    "address", [b"j\xf6rg@sender.test", b"\xc3@sender.test", b"a@\xed\xa0\x80.test"]
)
def test_invalid_utf8_in_an_address_is_refused(gateway: GatewayThread, address: bytes) -> None:
    client = _client(gateway)
    reply = client.command(b"MAIL FROM:<" + address + b"> SMTPUTF8")
    assert reply.startswith("553 5.6.7"), reply
    assert client.command("MAIL FROM:<a@sender.test> SMTPUTF8").startswith("250")
    reply = client.command(b"RCPT TO:<" + address.replace(b"sender", b"example") + b">")
    assert reply.startswith("553 5.6.7"), reply


def test_non_ascii_sender_is_not_sent_to_an_upstream_without_smtputf8(
    gateway: GatewayThread, sink: SmtpSink
) -> None:
    client = _client(gateway)
    assert client.command("MAIL FROM:<jörg@sender.test> SMTPUTF8").startswith("250")
    assert client.command("RCPT TO:<someone@example.org>").startswith("553 5.6.7")
    assert client.command("DATA").startswith("554")
    client.command("RSET")
    # The connection serves on: an ASCII transaction is delivered.
    assert client.command("MAIL FROM:<a@sender.test>").startswith("250")
    assert client.command("RCPT TO:<someone@example.org>").startswith("250")
    assert client.command("DATA").startswith("354")
    assert client.command(b"Subject: ascii\r\n\r\nbody\r\n.").startswith("250")
    [message] = sink.wait_messages(1)
    assert message.mail_from == "a@sender.test"
    assert "jörg" not in repr(sink.messages())


def test_non_ascii_recipient_is_refused_and_the_ascii_ones_go_through(
    gateway: GatewayThread, sink: SmtpSink
) -> None:
    client = _client(gateway)
    assert client.command("MAIL FROM:<a@sender.test> SMTPUTF8").startswith("250")
    assert client.command("RCPT TO:<jörg@example.org>").startswith("553 5.6.7")
    assert client.command("RCPT TO:<someone@example.org>").startswith("250")
    assert client.command("RCPT TO:<müller@example.org>").startswith("553 5.6.7")
    assert client.command("DATA").startswith("354")
    assert client.command(b"Subject: mixed\r\n\r\nbody\r\n.").startswith("250")
    [message] = sink.wait_messages(1)
    assert message.rcpt_to == ("someone@example.org",)
