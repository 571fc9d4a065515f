"""The SMTP front against real clients on loopback, embedded Maildir delivery."""

from __future__ import annotations

import smtplib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway_harness import GatewayThread
from wire_client import RawClient

pytestmark = pytest.mark.integration

MESSAGE = (
    b"From: Alice <alice@sender.test>\r\n"
    b"To: bob@example.org\r\n"
    b"Subject: quarterly invoice\r\n"
    b"Date: Sat, 28 Nov 2026 10:00:00 +0000\r\n"
    b"Message-ID: <1234@sender.test>\r\n"
    b"\r\n"
    b"Hello Bob,\r\n.leading dot line\r\nthe invoice is attached.\r\n"
)


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[GatewayThread]:
    with GatewayThread(tmp_path) as running:
        yield running


def ehlo(client: RawClient) -> str:
    return client.command("EHLO client.sender.test")


def test_delivers_to_maildir_with_headers_and_untouched_body(gateway: GatewayThread) -> None:
    with smtplib.SMTP("127.0.0.1", gateway.port) as client:
        client.ehlo("client.sender.test")
        refused = client.sendmail("alice@sender.test", ["bob@example.org"], MESSAGE)
    assert refused == {}
    [stored] = gateway.maildir_messages()
    head, original = stored.split(b"From: Alice", 1)
    assert b"From: Alice" + original == MESSAGE
    names = [line.split(b":")[0] for line in head.split(b"\r\n") if line and line[:1] not in b" \t"]
    assert names[0] == b"Received"
    assert names[-3:] == [b"X-Spam-Status", b"X-Spam-Score", b"X-Spam-Symbols"]
    assert set(names) <= {b"Received", b"Authentication-Results", *names[-3:]}
    assert b"by mx.mailmoat.test (mailmoat) with ESMTP id" in head.replace(b"\r\n\t", b" ")
    assert b"X-Spam-Status: No, score=" in head


def test_ehlo_advertises_extensions(gateway: GatewayThread) -> None:
    client = RawClient(gateway.port)
    assert client.banner.startswith("220 mx.mailmoat.test")
    reply = ehlo(client)
    for keyword in ("PIPELINING", "SIZE 26214400", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES"):
        assert keyword in reply
    assert "STARTTLS" not in reply  # no certificate configured
    assert client.command("QUIT").startswith("221 2.0.0")


@pytest.mark.parametrize(
    ("label", "commands", "expected"),
    [
        ("mail before helo", ["MAIL FROM:<a@b.test>"], "503 5.5.1"),
        ("rcpt before mail", ["EHLO x.test", "RCPT TO:<bob@example.org>"], "503 5.5.1"),
        ("data before rcpt", ["EHLO x.test", "MAIL FROM:<a@b.test>", "DATA"], "503 5.5.1"),
        ("nested mail", ["EHLO x.test", "MAIL FROM:<a@b.test>", "MAIL FROM:<a@b.test>"], "503"),
        ("mail syntax", ["EHLO x.test", "MAIL FROM:a@b.test"], "501 5.1.7"),
        ("mail keyword", ["EHLO x.test", "MAIL <a@b.test>"], "501 5.5.4"),
        ("unknown param", ["EHLO x.test", "MAIL FROM:<a@b.test> RET=FULL"], "555 5.5.4"),
        ("rcpt syntax", ["EHLO x.test", "MAIL FROM:<a@b.test>", "RCPT TO:"], "501 5.1.3"),
        ("helo syntax", ["HELO"], "501 5.5.4"),
        ("unknown command", ["FROB"], "500 5.5.1"),
        ("auth not offered", ["AUTH PLAIN AGFhAGI="], "502 5.5.1"),
        ("vrfy", ["VRFY bob"], "252 2.5.0"),
        ("noop", ["NOOP"], "250 2.0.0"),
        ("rset", ["RSET"], "250 2.0.0"),
        ("expn", ["EXPN staff"], "502 5.5.1"),
        ("starttls without cert", ["EHLO x.test", "STARTTLS"], "502 5.5.1"),
        ("nul in command", ["NO\x00OP"], "500 5.5.2"),
        (
            "8-bit address without SMTPUTF8",
            ["EHLO x.test", "MAIL FROM:<\u00e9@b.test>"],
            "553 5.6.7",
        ),
        ("size over limit", ["EHLO x.test", "MAIL FROM:<a@b.test> SIZE=999999999"], "552 5.3.4"),
    ],
)
def test_replies(gateway: GatewayThread, label: str, commands: list[str], expected: str) -> None:
    client = RawClient(gateway.port)
    for command in commands[:-1]:
        assert client.command(command)[0] == "2", label
    assert client.command(commands[-1]).startswith(expected), label
    assert client.command("NOOP").startswith("250"), f"{label}: server stopped serving"


def test_long_command_line_is_refused_and_session_goes_on(gateway: GatewayThread) -> None:
    client = RawClient(gateway.port)
    ehlo(client)
    assert client.command("NOOP " + "x" * 2000).startswith("500 5.5.2")
    assert client.command("NOOP").startswith("250")


def data_exchange(
    client: RawClient, payload: bytes, mail: str = "MAIL FROM:<a@sender.test>"
) -> str:
    ehlo(client)
    assert client.command(mail).startswith("250")
    assert client.command("RCPT TO:<bob@example.org>").startswith("250")
    assert client.command("DATA").startswith("354")
    client.send(payload + b".\r\n")
    return client.reply()


@pytest.mark.parametrize(
    ("label", "payload", "expected"),
    [
        ("NUL byte", b"Subject: x\r\n\r\na\x00b\r\n", "554 5.6.0"),
    ],
)
def test_bad_data_refused_and_server_keeps_serving(
    gateway: GatewayThread, label: str, payload: bytes, expected: str
) -> None:
    client = RawClient(gateway.port)
    assert data_exchange(client, payload).startswith(expected), label
    assert data_exchange(client, MESSAGE).startswith("250"), label
    assert len(gateway.maildir_messages()) == 1


def test_message_over_size_refused_after_data(tmp_path: Path) -> None:
    with GatewayThread(tmp_path, {"smtp": {"max_message_size": 10_000}}) as gateway:
        client = RawClient(gateway.port)
        big = b"Subject: big\r\n\r\n" + (b"z" * 70 + b"\r\n") * 500
        assert data_exchange(client, big).startswith("552 5.3.4")
        assert data_exchange(client, MESSAGE).startswith("250")
        assert len(gateway.maildir_messages()) == 1


def test_8bit_without_8bitmime(tmp_path: Path) -> None:
    payload = b"Subject: caf\xc3\xa9\r\n\r\ncaf\xc3\xa9\r\n"
    with GatewayThread(tmp_path / "lenient") as gateway:
        assert data_exchange(RawClient(gateway.port), payload).startswith("250")
        [stored] = gateway.maildir_messages()
        assert b"SMTP_8BIT_UNDECLARED" in stored
        declared = data_exchange(
            RawClient(gateway.port), payload, "MAIL FROM:<a@b.test> BODY=8BITMIME"
        )
        assert declared.startswith("250")
    with GatewayThread(tmp_path / "strict", {"protocol": {"strict_8bit": True}}) as gateway:
        assert data_exchange(RawClient(gateway.port), payload).startswith("554 5.6.1")


SMUGGLED = (
    b"MAIL FROM:<smuggler@evil.test>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\nSubject: smuggled\r\n"
)


@pytest.mark.parametrize(
    ("label", "separator"),
    [
        ("LF.LF", b"\n.\n"),
        ("CR.CR", b"\r.\r"),
        ("LF.CRLF", b"\n.\r\n"),
        ("CRLF.LF", b"\r\n.\n"),
        ("CR.CRLF", b"\r.\r\n"),
        ("CRLF.CR", b"\r\n.\r"),
    ],
)
def test_smuggling_variants_never_end_data(
    gateway: GatewayThread, label: str, separator: bytes
) -> None:
    client = RawClient(gateway.port)
    payload = b"Subject: first\r\n\r\nbody" + separator + SMUGGLED + b"\r\nsmuggled body\r\n"
    assert data_exchange(client, payload).startswith("250"), label
    assert client.command("QUIT").startswith("221")
    [stored] = gateway.maildir_messages()
    assert b"smuggler@evil.test" in stored, label  # still part of the one message


def test_bare_newline_reject_mode(tmp_path: Path) -> None:
    with GatewayThread(tmp_path, {"smtp": {"bare_newline": "reject"}}) as gateway:
        reply = data_exchange(RawClient(gateway.port), b"Subject: x\r\n\r\na\nb\r\n")
        assert reply.startswith("554 5.5.2")
        assert gateway.maildir_messages() == []


def test_bare_newline_normalized_by_default(gateway: GatewayThread) -> None:
    reply = data_exchange(RawClient(gateway.port), b"Subject: x\r\n\r\na\nb\rc\r\n")
    assert reply.startswith("250")
    [stored] = gateway.maildir_messages()
    assert stored.endswith(b"\r\n\r\na\r\nb\r\nc\r\n")


RELAY_TRICKS = [
    "user@evil.test",
    "user%evil.test@example.org",
    "evil.test!user@example.org",
    "@example.org:user@evil.test",
    '"user@evil.test"@example.org',
    "user@evil.test.",
    "user@example.org..",
    "user@[127.0.0.1]",
    "user@EVIL.TEST",
]


@pytest.mark.parametrize("address", RELAY_TRICKS)
def test_relay_denied(gateway: GatewayThread, address: str) -> None:
    client = RawClient(gateway.port)
    ehlo(client)
    assert client.command("MAIL FROM:<a@sender.test>").startswith("250")
    reply = client.command(f"RCPT TO:<{address}>")
    assert reply.startswith(("554 5.7.1", "501 5.1.3")), reply
    assert client.command("DATA").startswith(("554 5.5.1", "503"))


def test_our_domain_any_case_and_trailing_dot_accepted(gateway: GatewayThread) -> None:
    client = RawClient(gateway.port)
    ehlo(client)
    client.command("MAIL FROM:<a@sender.test>")
    assert client.command("RCPT TO:<Bob@EXAMPLE.ORG>").startswith("250 2.1.5")
    assert client.command("RCPT TO:<bob@example.org.>").startswith("250 2.1.5")


def test_pipelined_garbage_gets_replies_and_server_keeps_serving(gateway: GatewayThread) -> None:
    client = RawClient(gateway.port)
    ehlo(client)
    client.send(b"GARBAGE1\r\nMAIL FROM:<>\r\n\xff\xfe\r\nRCPT TO:<\r\nNOOP\r\n")
    replies = [client.reply() for _ in range(5)]
    assert [r[:3] for r in replies] == ["500", "250", "500", "501", "250"]
    assert client.command("RSET").startswith("250")


def test_too_many_errors_hang_up(gateway: GatewayThread) -> None:
    client = RawClient(gateway.port)
    ehlo(client)
    client.send(b"BOGUS\r\n" * 25)
    replies = [client.reply() for _ in range(21)]
    assert replies[-1].startswith("421 4.7.0")
    assert client.closed()


def test_non_smtp_command_dropped(gateway: GatewayThread) -> None:
    client = RawClient(gateway.port)
    assert client.command("GET / HTTP/1.1").startswith("521 5.5.1")
    assert client.closed()


def test_vrfy_without_argument_and_quit(gateway: GatewayThread) -> None:
    client = RawClient(gateway.port)
    assert client.command("VRFY").startswith("501")
    assert client.command("QUIT").startswith("221")
    assert client.closed()


def test_data_timeout_closes_with_421(tmp_path: Path) -> None:
    with GatewayThread(tmp_path, {"smtp": {"command_timeout": 0.5}}) as gateway:
        client = RawClient(gateway.port)
        ehlo(client)
        client.command("MAIL FROM:<a@sender.test>")
        client.command("RCPT TO:<bob@example.org>")
        assert client.command("DATA").startswith("354")
        client.send(b"Subject: slow\r\n\r\nhalf a message")
        assert client.reply().startswith("421 4.4.2")
        assert client.closed()
        assert gateway.maildir_messages() == []


def test_command_timeout_counts_from_each_command(tmp_path: Path) -> None:
    with GatewayThread(tmp_path, {"smtp": {"command_timeout": 0.5}}) as gateway:
        client = RawClient(gateway.port)
        ehlo(client)
        for _ in range(4):  # 1.2 s in all, never 0.5 s without a command
            time.sleep(0.3)
            assert client.command("NOOP").startswith("250")
        started = time.monotonic()
        assert client.reply().startswith("421 4.4.2 Timeout exceeded")
        assert 0.3 < time.monotonic() - started < 1.5
        assert client.closed()
