"""STARTTLS under fast clients, plaintext injection and a stock TLS client.

On both event loops the gateway runs on (asyncio's and uvloop, which
``mailmoat serve`` uses): a client that sends its ClientHello the instant it
reads ``220`` must get its handshake at once (it used to land in the
plaintext buffer and stall 30 s), and plaintext sent after STARTTLS must
never be executed inside TLS (CVE-2011-0411).
"""

from __future__ import annotations

import asyncio
import smtplib
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gateway_harness import GatewayThread, self_signed_certificate
from servers import Postfix, require_binary
from wire_client import ReplyReader

pytestmark = pytest.mark.integration

FAST_CLIENTS = 50
POSTFIX_MESSAGES = 10


def _loops() -> list[object]:
    import uvloop

    return [
        pytest.param(asyncio.new_event_loop, id="asyncio"),
        pytest.param(uvloop.new_event_loop, id="uvloop"),
    ]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture(params=_loops())
def gateway(
    request: pytest.FixtureRequest, tmp_path: Path, certificate: tuple[Path, Path]
) -> Iterator[GatewayThread]:
    cert, key = certificate
    factory: Callable[[], asyncio.AbstractEventLoop] = request.param
    overrides: dict[str, dict[str, object]] = {
        "smtp": {"tls_cert": str(cert), "tls_key": str(key)},
        # The greetings under test ("localhost", a mismatched literal) score
        # in the default greylisting band; greylisting is not what is tested.
        "greylist": {"enabled": False},
    }
    with GatewayThread(tmp_path, overrides, loop_factory=factory) as running:
        yield running


def client_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(certificate[0]))
    context.check_hostname = False
    return context


def plaintext_until_starttls(port: int, after_starttls: bytes = b"") -> tuple[socket.socket, str]:
    """Connect, EHLO, send STARTTLS (plus ``after_starttls`` in the same
    packet) and read the reply to it; nothing is left unread."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    reader = ReplyReader(sock)
    assert reader.reply().startswith("220 ")
    assert "STARTTLS" in reader.command(b"EHLO client.sender.test")
    sock.sendall(b"STARTTLS\r\n" + after_starttls)
    # The reply is read byte by byte: nothing past its CRLF may be consumed
    # from the socket, the TLS layer must see the server's first record.
    reply = b""
    while not reply.endswith(b"\r\n"):
        byte = sock.recv(1)
        if not byte:
            break
        reply += byte
    assert not reader.buffer
    return sock, reply.decode().strip()


def test_fast_clients_all_complete_the_handshake_at_once(
    gateway: GatewayThread, certificate: tuple[Path, Path]
) -> None:
    context = client_context(certificate)
    slowest = 0.0
    started = time.monotonic()
    for _ in range(FAST_CLIENTS):
        sock, reply = plaintext_until_starttls(gateway.port)
        assert reply.startswith("220 2.0.0"), reply
        began = time.monotonic()
        # The ClientHello goes out the instant 220 is read.
        with context.wrap_socket(sock) as tls:
            slowest = max(slowest, time.monotonic() - began)
            reader = ReplyReader(tls)
            ehlo = reader.command(b"EHLO client.sender.test")
            assert ehlo.startswith("250") and "STARTTLS" not in ehlo
            assert reader.command(b"QUIT").startswith("221")
    assert slowest < 2.0, f"a handshake took {slowest:.1f} s"
    assert time.monotonic() - started < 20


@pytest.mark.parametrize(
    "injected",
    [
        b"RSET\r\nMAIL FROM:<x@y.test>\r\n",
        b"EHLO evil.test\r\nMAIL FROM:<x@y.test>\r\nRCPT TO:<bob@example.org>\r\n",
        b"NOOP\r\n",
    ],
    ids=["rset-mail", "ehlo-mail-rcpt", "noop"],
)
def test_plaintext_pipelined_after_starttls_is_never_executed(
    gateway: GatewayThread, injected: bytes
) -> None:
    sock, reply = plaintext_until_starttls(gateway.port, injected)
    with sock:
        assert reply.startswith("554 5.5.1"), reply
        sock.settimeout(5)
        assert sock.recv(65536) == b"", "the connection is closed after the refusal"


def test_plaintext_injected_right_after_220_never_runs_inside_tls(
    gateway: GatewayThread, certificate: tuple[Path, Path]
) -> None:
    """Plaintext sent after reading 220 (a man in the middle's injection
    point) reaches the TLS layer, not the SMTP dialogue: the handshake
    fails, or if it did not, no injected command was answered."""
    context = client_context(certificate)
    for _ in range(10):
        sock, reply = plaintext_until_starttls(gateway.port)
        assert reply.startswith("220 2.0.0")
        sock.sendall(b"EHLO evil.test\r\nMAIL FROM:<x@y.test>\r\n")
        time.sleep(0.05)  # the injection and the ClientHello arrive apart
        with (
            pytest.raises((ssl.SSLError, ConnectionError, OSError)),
            context.wrap_socket(sock) as tls,
        ):
            ReplyReader(tls).command(b"NOOP")
        sock.close()


def test_mail_inside_tls_starts_from_a_fresh_session(
    gateway: GatewayThread, certificate: tuple[Path, Path]
) -> None:
    sock, reply = plaintext_until_starttls(gateway.port)
    assert reply.startswith("220 2.0.0")
    with client_context(certificate).wrap_socket(sock) as tls:
        reader = ReplyReader(tls)
        assert reader.command(b"NOOP") == "250 2.0.0 Ok"
        assert reader.command(b"MAIL FROM:<a@sender.test>").startswith("503 5.5.1")
        assert reader.command(b"EHLO client.sender.test").startswith("250")
        assert reader.command(b"MAIL FROM:<a@sender.test>").startswith("250")


def test_openssl_s_client_starttls(gateway: GatewayThread) -> None:
    openssl = require_binary("openssl")
    done = subprocess.run(
        [openssl, "s_client", "-starttls", "smtp", "-connect", f"127.0.0.1:{gateway.port}",
         "-crlf", "-quiet", "-verify_quiet"],
        input=b"EHLO client.sender.test\nNOOP\nQUIT\n",
        capture_output=True,
        timeout=30,
    )  # fmt: skip
    out = done.stdout.decode()
    assert "250-mx.mailmoat.test" in out and "STARTTLS" not in out, done.stderr
    assert "250 2.0.0 Ok" in out and "221 2.0.0 Bye" in out


def spam_symbols(stored: bytes) -> list[str]:
    head = stored[: stored.index(b"\r\n\r\n")].replace(b"\r\n\t", b" ").decode()
    [field] = [line for line in head.split("\r\n") if line.startswith("X-Spam-Symbols:")]
    return [item.strip().split("(")[0] for item in field.split(":", 1)[1].split(",")]


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        ("localhost", "localhost", {"HELO_NOT_FQDN"}),
        ("localhost", "LOCALHOST", {"HELO_NOT_FQDN"}),
        ("localhost", "[192.0.2.1]", {"HELO_NOT_FQDN", "HELO_LITERAL_MISMATCH"}),
    ],
)
def test_greeting_again_after_starttls_never_counts_a_finding_twice(
    gateway: GatewayThread,
    certificate: tuple[Path, Path],
    first: str,
    second: str,
    expected: set[str],
) -> None:
    sock = socket.create_connection(("127.0.0.1", gateway.port), timeout=10)
    plain = ReplyReader(sock)
    assert plain.reply().startswith("220 ")
    assert plain.command(f"EHLO {first}".encode()).startswith("250")
    assert plain.command(b"STARTTLS").startswith("220 2.0.0")
    with client_context(certificate).wrap_socket(sock) as tls:
        reader = ReplyReader(tls)
        assert reader.command(f"EHLO {second}".encode()).startswith("250")
        assert reader.command(b"MAIL FROM:<a@sender.test>").startswith("250")
        assert reader.command(b"RCPT TO:<bob@example.org>").startswith("250")
        assert reader.command(b"DATA").startswith("354")
        message = b"From: a@sender.test\r\nSubject: twice\r\n\r\nhello\r\n."
        assert reader.command(message).startswith("250")
        reader.command(b"QUIT")
    [stored] = gateway.maildir_messages()
    symbols = spam_symbols(stored)
    helo_symbols = [name for name in symbols if name.startswith("HELO_")]
    assert sorted(helo_symbols) == sorted(expected)


def test_postfix_as_the_sending_client_delivers_over_tls(
    gateway: GatewayThread, postfix_factory: Callable[..., Postfix]
) -> None:
    """Postfix relaying to the gateway with TLS mandatory: every message
    arrives promptly over TLS (a stalled handshake makes Postfix defer)."""
    postfix = postfix_factory(
        relayhost=f"127.0.0.1:{gateway.port}",
        main_cf={"smtp_tls_security_level": "encrypt", "smtp_tls_loglevel": "1"},
        master_cf=["tlsmgr    unix  -       -       n       1000?   1       tlsmgr"],
    )
    started = time.monotonic()
    with smtplib.SMTP(postfix.host, postfix.port, timeout=30) as submit:
        for number in range(POSTFIX_MESSAGES):
            message = f"From: a@sender.test\r\nSubject: relayed {number}\r\n\r\nhi\r\n"
            submit.sendmail("a@sender.test", ["bob@example.org"], message.encode())
    deadline = started + 20
    while len(gateway.maildir_messages()) < POSTFIX_MESSAGES and time.monotonic() < deadline:
        time.sleep(0.1)
    stored = gateway.maildir_messages()
    assert len(stored) == POSTFIX_MESSAGES, postfix.log_text()[-2000:]
    assert all(b"with ESMTPS id" in message for message in stored)
    assert "TLS connection established" in postfix.log_text()
