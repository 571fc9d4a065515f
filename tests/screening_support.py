"""Helpers for the screening integration tests: a gateway with a record log,
SMTP clients bound to chosen loopback source addresses."""

from __future__ import annotations

import smtplib
import socket
import threading
import time
import weakref
from pathlib import Path
from typing import Any

import dns.exception
import dns.message
import dns.rcode

from fakes import RATELIMITS_OFF
from gateway_harness import GatewayThread
from mailmoat.core.record import TransactionRecord

# Everything off that a test does not switch on: no limits, no greylisting,
# loopback not exempt (the tests come from 127.x addresses).
QUIET: dict[str, dict[str, Any]] = {
    "relay": {"domains": ["example.org"]},
    "ratelimit": dict(RATELIMITS_OFF),
    "greylist": {"enabled": False},
    "rdns": {"skip_networks": ["127.0.0.0/8", "::1/128"]},
}


class RefusingDns:
    """A DNS server on 127.0.0.1 (UDP, a thread) answering REFUSED to everything."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                wire, peer = self.sock.recvfrom(4096)
                reply = dns.message.make_response(dns.message.from_wire(wire))
                reply.set_rcode(dns.rcode.REFUSED)
                self.sock.sendto(reply.to_wire(), peer)
            except OSError:
                return
            except dns.exception.DNSException:
                continue

    def close(self) -> None:
        self.sock.close()


class ScreeningGateway(GatewayThread):
    """A started gateway that keeps every transaction record."""

    def __init__(self, tmp_path: Path, overrides: dict[str, dict[str, Any]]) -> None:
        merged = {name: dict(table) for name, table in QUIET.items()}
        # Network rule: DNS goes to loopback only; this server refuses every
        # query at once (status servfail), so lookups fail fast.
        self.dns = RefusingDns()
        merged["dns"] = {"nameserver": f"127.0.0.1:{self.dns.port}", "timeout": 1}
        for name, table in overrides.items():
            merged.setdefault(name, {}).update(table)
        super().__init__(tmp_path, merged)
        self.records: list[TransactionRecord] = []

    def start(self) -> ScreeningGateway:  # type: ignore[override]
        super().start()
        assert self.gateway is not None
        self.gateway.pipeline.recorders.append(self.records.append)
        return self

    def stop(self) -> None:
        super().stop()
        self.dns.close()

    def host(self) -> str:
        return self.config.smtp.listen.rsplit(":", 1)[0].strip("[]")

    def client(self, source: str, timeout: float = 10.0) -> smtplib.SMTP:
        return smtplib.SMTP(self.host(), self.port, timeout=timeout, source_address=(source, 0))

    def record_for(self, client_ip: str, timeout: float = 5.0) -> TransactionRecord:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [r for r in self.records if r.client_ip == client_ip]
            if found:
                return found[-1]
            time.sleep(0.02)
        raise AssertionError(f"no transaction record for {client_ip}")


def envelope(
    gateway: ScreeningGateway, source: str, rcpt: str = "user@example.org", data: bool = True
) -> tuple[int, str]:
    """One transaction from ``source``: the first refusal, or the final reply."""
    with gateway.client(source) as smtp:
        smtp.ehlo("client.example.net")
        code, text = smtp.mail("sender@example.net")
        if code != 250:
            return code, text.decode()
        code, text = smtp.rcpt(rcpt)
        if code != 250 or not data:
            return code, text.decode()
        code, text = smtp.data(
            b"From: sender@example.net\r\nTo: user@example.org\r\nSubject: hi\r\n"
            b"Date: Sat, 28 Nov 2026 03:00:00 +0000\r\nMessage-ID: <1@example.net>\r\n\r\nhi\r\n"
        )
        return code, text.decode()


def raw_connect(gateway: ScreeningGateway, source: str) -> socket.socket:
    sock = socket.create_connection(
        (gateway.host(), gateway.port), timeout=10, source_address=(source, 0)
    )
    return sock


# Bytes read past a complete reply, per socket (gone with the socket).
_unread: weakref.WeakKeyDictionary[socket.socket, bytes] = weakref.WeakKeyDictionary()


def read_reply(sock: socket.socket, timeout: float = 5.0) -> bytes:
    """One complete reply (through its final ``NNN `` line), or what came
    before EOF. Replies that arrived together (the banner and a pipelined
    command's answer) are returned one per call: the rest is kept."""
    sock.settimeout(timeout)
    data = _unread.pop(sock, b"")
    while True:
        start = 0
        while (end := data.find(b"\r\n", start)) >= 0:
            line = data[start:end]
            if len(line) < 4 or line[3:4] != b"-":
                if data[end + 2 :]:
                    _unread[sock] = data[end + 2 :]
                return data[: end + 2]
            start = end + 2
        chunk = sock.recv(4096)
        if not chunk:
            return data
        data += chunk
