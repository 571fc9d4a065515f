"""Gateway processes (``mailmoat serve``) for the cluster tests and bench."""

from __future__ import annotations

import os
import signal
import smtplib
import subprocess
import sys
from pathlib import Path

from servers import free_port, wait_for_port

MAILMOAT = str(Path(sys.executable).parent / "mailmoat")
DOMAIN = "mailmoat.test"

# Checks that would ask DNS outside loopback are off; the screening and
# classifier checks under test stay on.
OFFLINE = """
[checks.spf]
enabled = false
[checks.dkim]
enabled = false
[checks.dmarc]
enabled = false
[checks.urlbl]
enabled = false
[checks.dnsbl]
enabled = false
[checks.rdns]
enabled = false
"""


class Node:
    def __init__(
        self,
        name: str,
        workdir: Path,
        store_url: str,
        extra: str = "",
        upstream: str = "",
        smtp_extra: str = "",
    ) -> None:
        self.name = name
        self.upstream = upstream
        self.workdir = workdir / name
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.store_url = store_url
        self.extra = extra
        self.smtp_extra = smtp_extra
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def maildir(self) -> Path:
        return self.workdir / "maildir"

    def config_text(self) -> str:
        return f"""
[smtp]
listen = "127.0.0.1:{self.port}"
hostname = "{self.name}.{DOMAIN}"
{self.smtp_extra}
[relay]
domains = ["{DOMAIN}"]
upstream = "{self.upstream}"
[delivery]
maildir = "{self.maildir}"
[quarantine]
directory = "{self.workdir / "quarantine"}"
[store]
url = "{self.store_url}"
[pregreet]
delay = 0
[stats]
node = "{self.name}"
flush_interval = 0.5
[web]
enabled = false
[dns]
nameserver = "127.0.0.1:9"
timeout = 0.5
{self.extra}
{OFFLINE}
"""

    def start(self) -> Node:
        self.port = free_port()
        config = self.workdir / "mailmoat.toml"
        config.write_text(self.config_text())
        log = open(self.workdir / "serve.log", "ab")  # noqa: SIM115 - the child keeps it
        self.proc = subprocess.Popen(
            [MAILMOAT, "serve", "--config", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            start_new_session=True,
        )
        wait_for_port("127.0.0.1", self.port, timeout=20)
        return self

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)

    def log_text(self) -> str:
        return (self.workdir / "serve.log").read_text(errors="replace")

    def delivered(self) -> list[bytes]:
        new = self.maildir / "new"
        return [p.read_bytes() for p in sorted(new.iterdir())] if new.is_dir() else []


def send(
    port: int,
    rcpt: str = f"user@{DOMAIN}",
    sender: str = "someone@sender.test",
    body: str = "hello",
    source: str = "127.0.0.1",
    timeout: float = 30,
) -> tuple[int, str, str]:
    """(code, text, stage) of the first refusal, or of the final DATA answer."""
    message = (
        f"From: {sender}\r\nTo: {rcpt}\r\nSubject: cluster\r\n"
        f"Message-ID: <{os.urandom(6).hex()}@sender.test>\r\n"
        f"Date: Sat, 28 Nov 2026 03:00:00 +0000\r\n\r\n{body}\r\n"
    )
    with smtplib.SMTP("127.0.0.1", port, timeout=timeout, source_address=(source, 0)) as client:
        client.ehlo("client.sender.test")
        code, text = client.mail(sender)
        if code != 250:
            return code, text.decode(), "mail"
        code, text = client.rcpt(rcpt)
        if code != 250:
            return code, text.decode(), "rcpt"
        code, text = client.data(message.encode())
        return code, text.decode(), "data"
