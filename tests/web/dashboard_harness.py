"""A real gateway + dashboard in the test's event loop, and a known mix of mail.

``running(tmp_path)`` starts ``Gateway`` on a free loopback port with the
stats recorder and the dashboard hooked in exactly as ``mailmoat serve`` does
(``mailmoat.runtime.Runtime``, door ``serve``; no autolearn or model
sync), with only the built-in local
checks (helo, headers, size: no DNS). ``send_mix`` sends the MIX below with
real SMTP clients (smtplib and a raw socket) in worker threads and returns what
each attempt got. EXPECTED is what the statistics must then say.
"""

from __future__ import annotations

import asyncio
import smtplib
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any

from gateway_harness import start_gateway, stop_gateway, toml_dumps
from mailmoat.checks import headers, helo, size
from mailmoat.checks.base import Services
from mailmoat.config import Config, load_config
from mailmoat.pipeline import Pipeline
from mailmoat.runtime import Runtime
from mailmoat.smtp.server import Gateway
from mailmoat.stats.recorder import StatsRecorder
from mailmoat.web.auth import hash_password

PASSWORD = "correct horse battery staple"
NODE = "gw-test"


def local_pipeline(services: Services) -> Pipeline:
    checks = [c for module in (helo, headers, size) for c in module.build(services)]
    return Pipeline(services, checks)


def write_config(tmp_path: Path, password_hash: str) -> Path:
    sections: dict[str, dict[str, Any]] = {
        "smtp": {
            "listen": "127.0.0.1:0",
            "hostname": "mx.mailmoat.test",
            "max_message_size": 20_000,
            "shutdown_grace": 2,
        },
        "relay": {"domains": ["example.org"]},
        "delivery": {"maildir": str(tmp_path / "maildir")},
        "quarantine": {"directory": str(tmp_path / "quarantine")},
        "store": {"url": f"sqlite:///{tmp_path / 'store.db'}"},
        "pregreet": {"delay": 0},
        "actions": {"add_header": 5.0, "quarantine": 10.0, "reject": 20.0},
        # Steer outcomes with the built-in header symbols.
        "scores": {
            "HDR_MISSING_DATE": 6.0,
            "HDR_MISSING_MESSAGE_ID": 12.0,
            "HDR_MISSING_FROM": 25.0,
        },
        "stats": {"node": NODE, "flush_interval": 0.5},
        "web": {"listen": "127.0.0.1:0", "password_hash": password_hash},
        # No learning from the mix: the statistics count exactly what is sent.
        "classifier": {"autolearn": False},
        "cluster": {"model_reload_interval": 0},
    }
    path = tmp_path / "mailmoat.toml"
    path.write_text(toml_dumps(sections))
    return path


@dataclass
class Running:
    gateway: Gateway
    port: int
    web_port: int
    recorder: StatsRecorder
    config: Config
    config_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def maildir_files(self) -> list[Path]:
        new = Path(self.config.delivery.maildir) / "new"
        return sorted(new.iterdir()) if new.exists() else []


_HASH_CACHE: dict[str, str] = {}


@asynccontextmanager
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    password_hash = _HASH_CACHE.setdefault(PASSWORD, hash_password(PASSWORD))
    path = write_config(tmp_path, password_hash)
    config = load_config(path)
    runtime = await Runtime.open(
        config, "serve", config_path=str(path), pipeline_factory=local_pipeline
    )
    recorder, web = runtime.recorder, runtime.dashboard
    assert recorder is not None and web is not None
    gateway = Gateway(runtime)
    port = await start_gateway(gateway)
    try:
        yield Running(gateway, port, web.port, recorder, config, path)
    finally:
        await stop_gateway(gateway)


def message(subject: str, *, date: bool = True, msgid: bool = True, sender: bool = True) -> bytes:
    lines = []
    if sender:
        lines.append("From: Alice <alice@sender.example>")
    lines += ["To: bob@example.org", f"Subject: {subject}"]
    if date:
        lines.append(f"Date: {formatdate()}")
    if msgid:
        lines.append(f"Message-ID: {make_msgid(domain='sender.example')}")
    body = "Hello Bob,\r\n\r\nthe quarterly figures are attached as promised.\r\n"
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


# (label, subject, message kwargs, recipient, oversize)
MIX: list[tuple[str, str, dict[str, bool], str, bool]] = [
    ("accept", "clean one", {}, "bob@example.org", False),
    ("accept", "clean two", {}, "carol@example.org", False),
    ("accept", "clean three", {}, "bob@example.org", False),
    ("tag", "tagged one (no date)", {"date": False}, "bob@example.org", False),
    ("tag", "tagged two (no date)", {"date": False}, "dave@example.org", False),
    ("quarantine", "held for review", {"msgid": False}, "bob@example.org", False),
    ("reject", "no from at all", {"sender": False}, "bob@example.org", False),
    ("relay", "relay attempt", {}, "victim@elsewhere.example", False),
    ("relay", "relay attempt 2", {}, "victim2@elsewhere.example", False),
    ("size", "far too big", {}, "bob@example.org", True),
]

EXPECTED_ACTIONS = {"accept": 3, "add_header": 2, "quarantine": 1, "reject": 5}
EXPECTED_REJECTS = {"score": 1, "relay_denied": 2, "size": 1, "protocol": 1}
EXPECTED_MESSAGES = 11
EXPECTED_CONNECTIONS = 11


def _send_one(port: int, subject: str, kwargs: dict[str, bool], rcpt: str, big: bool) -> str:
    data = message(subject, **kwargs)
    if big:
        data += b"x" * 70 + b"\r\n"
        data = data + (b"y" * 70 + b"\r\n") * 400
    with smtplib.SMTP("127.0.0.1", port, local_hostname="mail.sender.example", timeout=10) as s:
        s.ehlo()
        code, _ = s.mail("alice@sender.example")
        assert code == 250
        code, text = s.rcpt(rcpt)
        if code != 250:
            return f"{code} {text.decode()}"
        code, text = s.data(data)
        return f"{code} {text.decode()}"


def _send_protocol_violation(port: int) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        banner = sock.recv(1024)
        assert banner.startswith(b"220")
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        return sock.recv(1024).decode()


async def send_mix(port: int) -> list[tuple[str, str]]:
    results = []
    for label, subject, kwargs, rcpt, big in MIX:
        reply = await asyncio.to_thread(_send_one, port, subject, kwargs, rcpt, big)
        results.append((label, reply))
    results.append(("protocol", await asyncio.to_thread(_send_protocol_violation, port)))
    return results
