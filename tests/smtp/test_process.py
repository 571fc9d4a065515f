"""``mailmoat serve`` as a real process: swaks delivery, SIGHUP, SIGTERM, STARTTLS."""

from __future__ import annotations

import os
import signal
import smtplib
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway_harness import GatewayThread, self_signed_certificate, toml_dumps
from serve_harness import MailmoatProcess
from servers import free_port, require_binary, swaks, tcp_listening
from wire_client import RawClient

pytestmark = pytest.mark.integration


class ServeProcess(MailmoatProcess):
    def __init__(self, tmp_path: Path, domains: list[str]) -> None:
        super().__init__(tmp_path, "serve", free_port())
        self.workers = 2
        self.write_config(domains)
        # Every worker says so once it accepts (two on this 2-core machine).
        self.start(listeners=self.workers)

    def write_config(self, domains: list[str]) -> None:
        self.config_path.write_text(
            toml_dumps(
                {
                    "smtp": {
                        "listen": f"127.0.0.1:{self.port}",
                        "shutdown_grace": 10,
                        "workers": self.workers,
                    },
                    "web": {"enabled": False},
                    "relay": {"domains": domains},
                    "pregreet": {"delay": 0},
                }
            )
        )

    def maildir(self) -> list[Path]:
        new = self.directory / "var" / "maildir" / "new"
        return sorted(new.iterdir()) if new.exists() else []


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[ServeProcess]:
    with ServeProcess(tmp_path, ["localhost"]) as process:
        yield process


def test_swaks_delivers_one_message_with_headers(serve: ServeProcess) -> None:
    require_binary("swaks")
    result = swaks(f"127.0.0.1:{serve.port}", "--to", "someone@localhost")
    assert result.returncode == 0, result.transcript
    [path] = serve.maildir()
    stored = path.read_bytes()
    assert stored.startswith(b"Received: from ")
    for name in (b"X-Spam-Status:", b"X-Spam-Score:", b"X-Spam-Symbols:"):
        assert name in stored
    assert "action=accept" in serve.output()


def test_sighup_reloads_without_dropping_connections(serve: ServeProcess) -> None:
    held = RawClient(serve.port)
    held.command("EHLO client.sender.test")
    held.command("MAIL FROM:<a@sender.test>")
    assert held.command("RCPT TO:<x@other.test>").startswith("554 5.7.1")
    serve.write_config(["localhost", "other.test"])
    os.kill(serve.proc.pid, signal.SIGHUP)
    deadline = time.monotonic() + 10
    while serve.output().count("reloaded config") < serve.workers and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "reloaded config" in serve.output()
    assert held.command("NOOP").startswith("250"), "open connection survived the reload"
    fresh = RawClient(serve.port)
    fresh.command("EHLO client.sender.test")
    fresh.command("MAIL FROM:<a@sender.test>")
    assert fresh.command("RCPT TO:<x@other.test>").startswith("250")


def test_sighup_with_broken_config_keeps_running(serve: ServeProcess) -> None:
    serve.config_path.write_text("[smtp\n")
    os.kill(serve.proc.pid, signal.SIGHUP)
    deadline = time.monotonic() + 10
    while serve.output().count("reload failed") < serve.workers and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "reload failed" in serve.output()
    assert RawClient(serve.port).command("NOOP").startswith("250")


def test_sigterm_finishes_transaction_in_flight_and_closes_idle(serve: ServeProcess) -> None:
    idle = RawClient(serve.port)
    idle.command("EHLO idle.sender.test")
    busy = RawClient(serve.port)
    busy.command("EHLO busy.sender.test")
    busy.command("MAIL FROM:<a@sender.test>")
    busy.command("RCPT TO:<someone@localhost>")
    assert busy.command("DATA").startswith("354")
    busy.send(b"Subject: in flight\r\n\r\nfirst half\r\n")
    os.kill(serve.proc.pid, signal.SIGTERM)
    assert idle.reply().startswith("421 4.3.2")
    time.sleep(0.3)
    busy.send(b"second half\r\n.\r\n")
    assert busy.reply().startswith("250 2.0.0")
    assert serve.proc.wait(20) == 0
    [path] = serve.maildir()
    assert b"second half" in path.read_bytes()


def test_starttls(tmp_path: Path) -> None:
    cert, key = self_signed_certificate(tmp_path)
    overrides = {"smtp": {"tls_cert": str(cert), "tls_key": str(key)}}
    with GatewayThread(tmp_path, overrides) as gateway:
        context = ssl.create_default_context(cafile=str(cert))
        context.check_hostname = False
        with smtplib.SMTP("127.0.0.1", gateway.port) as client:
            client.ehlo("client.sender.test")
            assert client.has_extn("starttls")
            client.starttls(context=context)
            code, features = client.ehlo("client.sender.test")
            assert code == 250 and b"STARTTLS" not in features
            client.sendmail("a@sender.test", ["bob@example.org"], b"Subject: tls\r\n\r\nx\r\n")
        [stored] = gateway.maildir_messages()
        assert b"with ESMTPS id" in stored


def test_a_crashed_worker_is_replaced(serve: ServeProcess) -> None:
    children = subprocess.run(
        ["pgrep", "-P", str(serve.proc.pid)], capture_output=True, text=True, check=True
    ).stdout.split()
    assert len(children) == serve.workers
    os.kill(int(children[0]), signal.SIGKILL)
    deadline = time.monotonic() + 15
    while (
        "starting it again" not in serve.output()
        or serve.output().count("listening on") < serve.workers + 1
    ):
        assert time.monotonic() < deadline, serve.output()
        time.sleep(0.1)
    for _ in range(4):  # both workers answer
        client = RawClient(serve.port)
        assert client.command("NOOP").startswith("250")
        client.close()
    assert serve.proc.poll() is None


def test_workers_end_when_the_supervisor_is_killed(serve: ServeProcess) -> None:
    workers = subprocess.run(
        ["pgrep", "-P", str(serve.proc.pid)], capture_output=True, text=True, check=True
    ).stdout.split()
    assert len(workers) == serve.workers
    serve.proc.kill()
    serve.proc.wait(10)
    deadline = time.monotonic() + 15
    while any(Path(f"/proc/{pid}").exists() for pid in workers):
        assert time.monotonic() < deadline, "orphaned workers still running"
        time.sleep(0.1)
    assert not tcp_listening(serve.port)
