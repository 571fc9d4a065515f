"""``mailmoat scan`` without ``--config`` leaves no trace and sends no DNS
query: an in-memory store (no ``./var/`` in the current directory) and an
offline resolver. With ``--config`` it uses that file's ``[dns]``.

Before the fix it opened ``./var/mailmoat.db`` wherever it was run and asked
the system resolver (here: ``MAILMOAT_NAMESERVER``) about every name.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

MESSAGE = (
    b"Received: from mail.sender.test (mail.sender.test [198.51.100.7])\n"
    b"\tby mx.example.org with ESMTP id 1; Sat, 28 Nov 2026 10:00:00 +0000\n"
    b"From: a@sender.test\nTo: b@example.org\nSubject: see http://spam.example.net/x\n"
    b"Date: Sat, 28 Nov 2026 10:00:00 +0000\nMessage-ID: <x@sender.test>\n\n"
    b"Visit http://spam.example.net/offer and http://198.51.100.9/x today.\n"
)


@pytest.fixture
def listening_nameserver() -> Iterator[socket.socket]:
    """A UDP socket on loopback standing in for a name server: whatever
    arrives there is a query scan sent."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.5)
    try:
        yield sock
    finally:
        sock.close()


def _queries(sock: socket.socket) -> int:
    count = 0
    try:
        while True:
            sock.recv(4096)
            count += 1
    except TimeoutError:
        return count


def _scan(cwd: Path, nameserver: socket.socket, *args: str) -> subprocess.CompletedProcess[str]:
    host, port = nameserver.getsockname()
    env = {**os.environ, "MAILMOAT_NAMESERVER": f"{host}:{port}"}
    return subprocess.run(
        [sys.executable, "-m", "mailmoat", "scan", "--json", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env=env,
    )


def test_scan_without_config_writes_nothing_and_sends_no_query(
    tmp_path: Path, listening_nameserver: socket.socket
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    message = tmp_path / "message.eml"
    message.write_bytes(MESSAGE)
    done = _scan(work, listening_nameserver, str(message))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["file"] == str(message)
    assert list(work.iterdir()) == [], "scan created files in the current directory"
    assert _queries(listening_nameserver) == 0, "scan sent DNS queries without a config"


def test_scan_with_config_uses_its_dns(tmp_path: Path, listening_nameserver: socket.socket) -> None:
    host, port = listening_nameserver.getsockname()
    config = tmp_path / "scan.toml"
    config.write_text(
        f'[store]\nurl = "sqlite:///{tmp_path}/store.db"\n'
        f'[dns]\nnameserver = "{host}:{port}"\ntimeout = 0.2\n'
    )
    message = tmp_path / "message.eml"
    message.write_bytes(MESSAGE)
    done = _scan(tmp_path, listening_nameserver, "--config", str(config), str(message))
    assert done.returncode == 0, done.stderr
    assert _queries(listening_nameserver) > 0
    assert (tmp_path / "store.db").exists()
