"""A worker's message bytes in flight stay under ``smtp.max_inflight_bytes``.

Before the fix nothing bounded them: every 24 MB message in flight cost
about 85 MB of worker memory, however many arrived at once. Now MAIL with
a SIZE that does not fit and DATA on a spent budget get ``452 4.3.1``, and a
message that overflows the budget while arriving is dropped as it comes and
refused at its end, so the held bytes never pass the limit.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gateway_harness import GatewayThread
from wire_client import RawClient

pytestmark = pytest.mark.integration

BUDGET = 3_000_000


def _body(size: int) -> bytes:
    line = b"x" * 78 + b"\r\n"
    return b"Subject: big\r\n\r\n" + line * (size // len(line))


def _in_data(gateway: GatewayThread, sender: str = "a@sender.test") -> RawClient:
    client = RawClient(gateway.port)
    client.command("EHLO client.sender.test")
    assert client.command(f"MAIL FROM:<{sender}>").startswith("250")
    assert client.command("RCPT TO:<someone@example.org>").startswith("250")
    assert client.command("DATA").startswith("354")
    return client


def _held(gateway: GatewayThread) -> int:
    assert gateway.gateway is not None

    async def used() -> int:
        assert gateway.gateway is not None
        return gateway.gateway.inflight.used

    return int(gateway.call(used()))


def _wait_held(gateway: GatewayThread, at_least: int) -> None:
    deadline = time.monotonic() + 10
    while _held(gateway) < at_least:
        assert time.monotonic() < deadline, f"held {_held(gateway)}"
        time.sleep(0.02)


def test_messages_in_flight_never_hold_more_than_the_budget(tmp_path: Path) -> None:
    overrides = {"smtp": {"max_inflight_bytes": BUDGET, "command_timeout": 30}}
    with GatewayThread(tmp_path, overrides) as gateway:
        first = _in_data(gateway)
        first.send(_body(2_500_000))
        _wait_held(gateway, 2_400_000)
        # A declared size that does not fit: 452 at MAIL, nothing read.
        declared = RawClient(gateway.port)
        declared.command("EHLO client.sender.test")
        assert declared.command("MAIL FROM:<a@sender.test> SIZE=1000000").startswith("452 4.3.1")
        # An undeclared one overflows while arriving: dropped, 452 at its end.
        second = _in_data(gateway)
        second.send(_body(1_000_000))
        assert second.command(b".").startswith("452 4.3.1")
        assert _held(gateway) <= BUDGET
        # The first is delivered; its bytes are given back.
        assert first.command(b".").startswith("250 2.0.0")
        assert _held(gateway) == 0
        assert second.command("MAIL FROM:<a@sender.test> SIZE=1000000").startswith("250")
        assert second.command("RCPT TO:<someone@example.org>").startswith("250")
        assert second.command("DATA").startswith("354")
        second.send(_body(1_000_000))
        assert second.command(b".").startswith("250 2.0.0")
        assert len(gateway.maildir_messages()) == 2
        assert _held(gateway) == 0


def test_data_waits_for_room_in_the_budget(tmp_path: Path) -> None:
    overrides = {"smtp": {"max_inflight_bytes": 1_000_000, "command_timeout": 30}}
    with GatewayThread(tmp_path, overrides) as gateway:
        first = _in_data(gateway)
        first.send(_body(960_000))  # under 64 KiB left
        _wait_held(gateway, 950_000)
        client = RawClient(gateway.port)
        client.command("EHLO client.sender.test")
        client.command("MAIL FROM:<a@sender.test>")
        client.command("RCPT TO:<someone@example.org>")
        assert client.command("DATA").startswith("452 4.3.1")
        assert first.command(b".").startswith("250 2.0.0")
        assert _held(gateway) == 0
        assert client.command("DATA").startswith("354")
        assert client.command(b"Subject: small\r\n\r\nbody\r\n.").startswith("250 2.0.0")


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


def test_many_large_messages_at_once_stay_within_the_worker_memory_budget(
    tmp_path: Path,
) -> None:
    """A real ``mailmoat serve`` worker: six 12 MB messages at once against
    a 30 MB budget. Without a budget its peak grew by about 3.5 times the
    bytes in flight (85 MB per 24 MB message)."""
    import threading

    from gateway_harness import toml_dumps
    from serve_harness import MailmoatProcess
    from servers import free_port

    budget, size, clients = 30_000_000, 12_000_000, 6
    serve = MailmoatProcess(tmp_path, "serve", free_port())
    port = serve.port
    serve.config_path.write_text(
        toml_dumps(
            {
                "smtp": {"listen": f"127.0.0.1:{port}", "workers": 1, "max_inflight_bytes": budget},
                "web": {"enabled": False},
                "relay": {"domains": ["example.org"]},
                "pregreet": {"delay": 0},
                "dns": {"nameserver": "127.0.0.1:9", "timeout": 0.2},
            }
        )
    )
    proc = serve.start(listeners=0).proc
    try:
        RawClient(port).command("QUIT")
        start = max(_status_kib(proc.pid, "VmHWM"), _status_kib(proc.pid, "VmRSS"))
        body = _body(size)
        replies: list[str] = []

        def send_one() -> None:
            client = RawClient(port)
            client.sock.settimeout(120)
            client.command("EHLO client.sender.test")
            client.command("MAIL FROM:<a@sender.test>")
            client.command("RCPT TO:<someone@example.org>")
            reply = client.command("DATA")
            if reply.startswith("354"):
                client.send(body)
                reply = client.command(b".")
            replies.append(reply)

        threads = [threading.Thread(target=send_one) for _ in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(180)
        peak = _status_kib(proc.pid, "VmHWM")
        assert len(replies) == clients
        assert all(r.startswith(("250 2.0.0", "452 4.3.1")) for r in replies), replies
        assert any(r.startswith("250") for r in replies)
        grown = (peak - start) * 1024
        assert grown < 4 * budget, (
            f"peak grew {grown / 1e6:.0f} MB for a {budget / 1e6:.0f} MB budget"
        )
    finally:
        serve.stop()
