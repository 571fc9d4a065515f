"""Pipelining clients (RFC 2920) through the relaying gateway on loopback:
every reply in order, whatever the upstream answers, and never a 250 for a
message the upstream does not hold. The replies to a pipelined group may
leave in one write (tests/wire/test_connection.py counts the writes)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway_harness import GatewayThread
from servers import Postfix, SmtpSink
from wire_client import RawClient

pytestmark = pytest.mark.integration

MESSAGE = (
    b"From: Alice <alice@sender.test>\r\n"
    b"To: bob@example.org\r\n"
    b"Subject: pipelined\r\n"
    b"Date: Mon, 07 Dec 2026 10:00:00 +0000\r\n"
    b"Message-ID: <pipe-1@sender.test>\r\n"
    b"\r\n"
    b"first line\r\n..dot line, stuffed\r\nlast line\r\n"
)


def relaying(tmp_path: Path, upstream: str) -> GatewayThread:
    return GatewayThread(tmp_path, {"relay": {"domains": ["example.org"], "upstream": upstream}})


def envelope(*rcpts: str) -> bytes:
    lines = [b"MAIL FROM:<alice@sender.test>"]
    lines += [f"RCPT TO:<{rcpt}>".encode() for rcpt in rcpts]
    return b"\r\n".join([*lines, b"DATA"]) + b"\r\n"


def test_pipelined_transactions_get_every_reply_in_order(
    tmp_path: Path, smtp_sink: SmtpSink
) -> None:
    with relaying(tmp_path, smtp_sink.address) as gateway:
        client = RawClient(gateway.port)
        assert "PIPELINING" in client.command("EHLO client.sender.test")
        for number in range(3):
            client.send(envelope("bob@example.org", "carol@example.org"))
            replies = [client.reply()[:3] for _ in range(4)]
            assert replies == ["250", "250", "250", "354"], number
            client.send(MESSAGE + b".\r\n" + (b"RSET\r\nNOOP\r\n" if number < 2 else b"QUIT\r\n"))
            assert client.reply().startswith("250 2.0.0"), number
            if number < 2:
                assert [client.reply()[:3] for _ in range(2)] == ["250", "250"]
        assert client.reply().startswith("221")
        assert client.closed()
    messages = smtp_sink.wait_messages(3)
    assert [m.rcpt_to for m in messages] == [("bob@example.org", "carol@example.org")] * 3
    assert all(m.data.endswith(MESSAGE.replace(b"\r\n..", b"\r\n.")) for m in messages)


def test_pipelined_group_with_recipients_the_upstream_refuses(
    tmp_path: Path, postfix_factory: Callable[..., Postfix]
) -> None:
    postfix = postfix_factory(virtual_mailboxes=["bob@example.org", "carol@example.org"])
    with relaying(tmp_path, postfix.address) as gateway:
        client = RawClient(gateway.port)
        client.command("EHLO client.sender.test")
        client.send(envelope("nobody@example.org", "bob@example.org", "ghost@example.org"))
        replies = [client.reply() for _ in range(4)]
        assert [r[:3] for r in replies] == ["250", "550", "250", "550"], replies
        client.send(b"DATA\r\n")
        assert client.reply().startswith("354")
        client.send(MESSAGE + b".\r\nQUIT\r\n")
        final = client.reply()
        assert final.startswith("250 2.0.0"), final
        assert client.reply().startswith("221")
    postfix.wait_delivered(1, timeout=20)
    [delivered] = postfix.maildir_messages("bob@example.org")
    assert delivered.replace(b"\r\n", b"\n").endswith(
        MESSAGE.replace(b"\r\n..", b"\r\n.").replace(b"\r\n", b"\n")
    )
    assert postfix.maildir_messages("carol@example.org") == []


def test_pipelined_group_when_the_upstream_hangs_up(
    tmp_path: Path, smtp_sink_factory: Callable[..., SmtpSink]
) -> None:
    sink = smtp_sink_factory(disconnect=["DATA"])
    with relaying(tmp_path, sink.address) as gateway:
        client = RawClient(gateway.port)
        client.command("EHLO client.sender.test")
        client.send(envelope("bob@example.org"))
        assert [client.reply()[:3] for _ in range(3)] == ["250", "250", "354"]
        client.send(
            MESSAGE + b".\r\nMAIL FROM:<alice@sender.test>\r\nRCPT TO:<bob@example.org>\r\n"
        )
        final = client.reply()
        assert final.startswith("451 4.4.2"), final  # the client keeps the message
        # The next transaction starts on a fresh upstream connection.
        assert [client.reply()[:3] for _ in range(2)] == ["250", "250"]
        assert client.command("QUIT").startswith("221")
    assert gateway.maildir_messages() == []


def test_a_client_rset_reaches_the_upstream_with_the_next_transaction(
    tmp_path: Path, smtp_sink: SmtpSink
) -> None:
    """The RSET owed upstream after the client's RSET leads the next
    pipelined group (RSET, XFORWARD, MAIL, RCPT): only the second
    transaction is delivered, with its own sender."""
    with relaying(tmp_path, smtp_sink.address) as gateway:
        client = RawClient(gateway.port)
        client.command("EHLO client.sender.test")
        assert client.command("MAIL FROM:<first@sender.test>").startswith("250")
        assert client.command("RCPT TO:<bob@example.org>").startswith("250")
        assert client.command("RSET").startswith("250")
        client.send(envelope("carol@example.org").replace(b"alice@", b"second@"))
        assert [client.reply()[:3] for _ in range(3)] == ["250", "250", "354"]
        client.send(MESSAGE + b".\r\nQUIT\r\n")
        assert client.reply().startswith("250 2.0.0")
        assert client.reply().startswith("221")
    [message] = smtp_sink.wait_messages(1)
    assert (message.mail_from, message.rcpt_to) == ("second@sender.test", ("carol@example.org",))
    time.sleep(0.2)
    assert len(smtp_sink.messages()) == 1
