"""Before-queue relay against real upstreams: Postfix's smtp-sink and Postfix."""

from __future__ import annotations

import smtplib
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway_harness import GatewayThread
from servers import Postfix, SmtpSink, free_port
from wire_client import RawClient

pytestmark = pytest.mark.integration

MESSAGE = (
    b"From: Alice <alice@sender.test>\r\n"
    b"To: bob@example.org\r\n"
    b"Subject: relayed\r\n"
    b"Date: Sat, 28 Nov 2026 10:00:00 +0000\r\n"
    b"Message-ID: <relay-1@sender.test>\r\n"
    b"\r\n"
    b"line one\r\n.dot line\r\n\r\nlast line\r\n"
)
ADDED = {
    b"Received",
    b"Authentication-Results",
    b"X-Spam-Status",
    b"X-Spam-Score",
    b"X-Spam-Symbols",
    b"X-Spam-Flag",
}


def relaying(tmp_path: Path, upstream: str, **relay: object) -> GatewayThread:
    return GatewayThread(
        tmp_path, {"relay": {"domains": ["example.org"], "upstream": upstream, **relay}}
    )


def added_header_names(relayed: bytes, original: bytes) -> list[bytes]:
    assert relayed.endswith(original)
    head = relayed[: len(relayed) - len(original)]
    return [line.split(b":")[0] for line in head.split(b"\r\n") if line and line[:1] not in b" \t"]


def send(port: int, rcpts: list[str], message: bytes = MESSAGE) -> dict[str, tuple[int, bytes]]:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo("client.sender.test")
        return client.sendmail("alice@sender.test", rcpts, message)


def test_relayed_message_is_byte_identical_apart_from_added_headers(
    tmp_path: Path, smtp_sink: SmtpSink
) -> None:
    with relaying(tmp_path, smtp_sink.address) as gateway:
        assert send(gateway.port, ["bob@example.org", "carol@example.org"]) == {}
    [got] = smtp_sink.wait_messages(1)
    assert got.mail_from == "alice@sender.test"
    assert got.rcpt_to == ("bob@example.org", "carol@example.org")
    names = added_header_names(got.data, MESSAGE)
    assert names[0] == b"Received" and set(names) <= ADDED
    assert gateway.maildir_messages() == []


def test_upstream_rcpt_rejection_is_mirrored(
    tmp_path: Path, smtp_sink_factory: Callable[..., SmtpSink]
) -> None:
    sink = smtp_sink_factory(hard_reject=["RCPT"], hard_reply="550 5.1.1 No such user here")
    with relaying(tmp_path, sink.address) as gateway:
        client = RawClient(gateway.port)
        client.command("EHLO client.sender.test")
        assert client.command("MAIL FROM:<alice@sender.test>").startswith("250")
        assert client.command("RCPT TO:<nobody@example.org>") == "550 5.1.1 No such user here"
        assert client.command("DATA").startswith("554 5.5.1")


def test_upstream_data_rejection_is_mirrored(
    tmp_path: Path, smtp_sink_factory: Callable[..., SmtpSink]
) -> None:
    sink = smtp_sink_factory(hard_reject=["."], hard_reply="554 5.7.0 Content refused upstream")
    with (
        relaying(tmp_path, sink.address) as gateway,
        pytest.raises(smtplib.SMTPDataError) as refused,
    ):
        send(gateway.port, ["bob@example.org"])
    assert refused.value.smtp_code == 554
    assert refused.value.smtp_error == b"5.7.0 Content refused upstream"


def test_upstream_down_gives_451_and_client_keeps_the_message(tmp_path: Path) -> None:
    with relaying(tmp_path, f"127.0.0.1:{free_port()}") as gateway:
        client = RawClient(gateway.port)
        client.command("EHLO client.sender.test")
        client.command("MAIL FROM:<alice@sender.test>")
        assert client.command("RCPT TO:<bob@example.org>").startswith("451 4.4.1")
        assert gateway.maildir_messages() == []


def test_upstream_timeout_after_data_gives_451_never_250(
    tmp_path: Path, smtp_sink_factory: Callable[..., SmtpSink]
) -> None:
    sink = smtp_sink_factory(delays={".": 5})
    with relaying(tmp_path, sink.address, data_timeout=1.0) as gateway:
        started = time.monotonic()
        with pytest.raises(smtplib.SMTPDataError) as refused:
            send(gateway.port, ["bob@example.org"])
        assert time.monotonic() - started < 4.5
    assert refused.value.smtp_code == 451
    assert refused.value.smtp_error.startswith(b"4.4.2")


def test_upstream_hangup_mid_transaction_gives_451(
    tmp_path: Path, smtp_sink_factory: Callable[..., SmtpSink]
) -> None:
    sink = smtp_sink_factory(disconnect=["DATA"])
    with (
        relaying(tmp_path, sink.address) as gateway,
        pytest.raises(smtplib.SMTPDataError) as refused,
    ):
        send(gateway.port, ["bob@example.org"])
    assert refused.value.smtp_code == 451


def test_upstream_slow_to_answer_connect(tmp_path: Path) -> None:
    """A listener that accepts but never greets: 451 within the connect timeout."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(5)
        port = silent.getsockname()[1]
        with relaying(tmp_path, f"127.0.0.1:{port}", connect_timeout=1.0) as gateway:
            client = RawClient(gateway.port)
            client.command("EHLO client.sender.test")
            client.command("MAIL FROM:<alice@sender.test>")
            started = time.monotonic()
            assert client.command("RCPT TO:<bob@example.org>").startswith("451 4.4.")
            assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    ("label", "separator"),
    [("LF.LF", b"\n.\n"), ("CR.CR", b"\r.\r"), ("LF.CRLF", b"\n.\r\n"), ("CRLF.LF", b"\r\n.\n")],
)
def test_smuggling_never_splits_what_we_send_upstream(
    tmp_path: Path, smtp_sink: SmtpSink, label: str, separator: bytes
) -> None:
    with relaying(tmp_path, smtp_sink.address) as gateway:
        client = RawClient(gateway.port)
        client.command("EHLO client.sender.test")
        client.command("MAIL FROM:<alice@sender.test>")
        client.command("RCPT TO:<bob@example.org>")
        assert client.command("DATA").startswith("354")
        client.send(
            b"Subject: one\r\n\r\nbody"
            + separator
            + b"MAIL FROM:<smuggler@evil.test>\r\nRCPT TO:<victim@example.org>\r\nDATA\r\n"
            + b"Subject: smuggled\r\n\r\nbad\r\n.\r\n"
        )
        assert client.reply().startswith("250"), label
        client.command("QUIT")
    time.sleep(0.3)
    messages = smtp_sink.messages()
    assert len(messages) == 1, label
    assert messages[0].mail_from == "alice@sender.test"
    assert b"smuggler@evil.test" in messages[0].data


def test_real_postfix_upstream_validates_recipients_and_delivers(
    tmp_path: Path, postfix_factory: Callable[..., Postfix]
) -> None:
    postfix = postfix_factory(virtual_mailboxes=["bob@example.org"])
    with relaying(tmp_path, postfix.address) as gateway:
        client = RawClient(gateway.port)
        client.command("EHLO client.sender.test")
        assert client.command("MAIL FROM:<alice@sender.test>").startswith("250")
        unknown = client.command("RCPT TO:<nobody@example.org>")
        assert unknown.startswith("550 5.1.1"), unknown
        assert client.command("RCPT TO:<bob@example.org>").startswith("250")
        assert client.command("DATA").startswith("354")
        client.send(MESSAGE.replace(b"\r\n.", b"\r\n..") + b".\r\n")  # dot-stuffed
        final = client.reply()
        assert final.startswith("250 2.0.0"), final
    postfix.wait_delivered(1, timeout=20)
    [delivered] = postfix.maildir_messages("bob@example.org")
    assert b"by mx.mailmoat.test (mailmoat)" in delivered.replace(b"\r\n\t", b" ").replace(
        b"\n\t", b" "
    )
    assert delivered.replace(b"\r\n", b"\n").endswith(MESSAGE.replace(b"\r\n", b"\n"))


def test_upstream_connections_are_reused_and_stale_ones_replaced(tmp_path: Path) -> None:
    first_sink = SmtpSink().start()
    port = first_sink.port
    try:
        with relaying(tmp_path, first_sink.address) as gateway:
            assert send(gateway.port, ["bob@example.org"]) == {}
            assert send(gateway.port, ["bob@example.org"]) == {}
            assert len(first_sink.wait_messages(2)) == 2
            assert gateway.gateway is not None
            deadline = time.monotonic() + 5
            while not gateway.gateway.upstreams.idle and time.monotonic() < deadline:
                time.sleep(0.02)  # the session hands it back just after QUIT
            pooled = [session for session, _since in gateway.gateway.upstreams.idle]
            assert len(pooled) == 1, "the second client reused the first one's connection"
            # The upstream restarts: the pooled connection is dead. The next
            # client must still get 250 (a fresh connection), not a 451.
            first_sink.stop()
            second_sink = SmtpSink(port=port).start()
            try:
                assert send(gateway.port, ["bob@example.org"]) == {}
                assert len(second_sink.wait_messages(1)) == 1
            finally:
                second_sink.stop()
    finally:
        first_sink.stop()
