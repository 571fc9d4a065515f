"""The dashboard never stalls the SMTP front that shares its event loop.

A real gateway and its dashboard run in the test's event loop (as ``mailmoat
serve`` runs them); a week of history is seeded in the store. While a
history search that matches nothing walks all of it (``since=30y``, which
used to walk 30 years of hours on the loop) and while a flood of wrong HTTP
Basic passwords arrives (scrypt used to run on the loop), a real SMTP client
times NOOP round trips and fresh banners on the gateway: each must come back
promptly.
"""

from __future__ import annotations

import asyncio
import smtplib
import socket
import threading
import time
from pathlib import Path

import httpx

from mailmoat.stats.counters import DAY, HOUR, floor
from mailmoat.stats.history import write_batch
from mailmoat.store.base import Store
from web.dashboard_harness import NODE, PASSWORD, running

# Well above the GIL switch interval and scheduling noise on a busy 2-core
# box, well below the seconds a walk or a scrypt run on the loop costs.
PROMPT = 0.35
HOURS = 7 * 24
ENTRIES_PER_HOUR = 1200


def _entry(when: float, index: int) -> dict[str, object]:
    return {
        "time": when,
        "queue_id": f"Q{int(when)}{index:05d}",
        "client_ip": f"192.0.2.{index % 250}",
        "client_rdns": f"host{index}.sender.example",
        "helo": "mail.sender.example",
        "mail_from": f"user{index}@sender.example",
        "rcpts": ["bob@example.org"],
        "subject": f"quarterly figures {index}",
        "message_id": f"<{index}@sender.example>",
        "action": "accept",
        "reason": "",
        "reply": "250 2.0.0 Ok",
        "score": 0.5,
        "symbols": {"HDR_OK": 0.0, "SPF_PASS": -0.1},
        "node": NODE,
    }


async def seed_week(store: Store, now: float) -> int:
    total = 0
    for back in range(HOURS):
        hour = floor(now, HOUR) - back * HOUR
        entries = [_entry(hour + i * (3000 / ENTRIES_PER_HOUR), i) for i in range(ENTRIES_PER_HOUR)]
        await write_batch(store, NODE, hour, entries, 7 * DAY)
        total += len(entries)
    return total


class SmtpProbe(threading.Thread):
    """NOOPs on one session and a fresh banner every few rounds, timed."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.stop = threading.Event()
        self.latencies: list[float] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as client:
                client.ehlo("probe.example")
                rounds = 0
                while not self.stop.is_set():
                    started = time.monotonic()
                    code, _ = client.noop()
                    assert code == 250
                    self.latencies.append(time.monotonic() - started)
                    rounds += 1
                    if rounds % 5 == 0:
                        self.latencies.append(self._banner())
                    time.sleep(0.02)
        except BaseException as exc:
            self.error = exc

    def _banner(self) -> float:
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", self.port), timeout=30) as sock:
            assert sock.recv(512).startswith(b"220")
            elapsed = time.monotonic() - started
            sock.sendall(b"QUIT\r\n")
            sock.recv(512)
        return elapsed


async def _probe_while(port: int, work: asyncio.Future[object]) -> list[float]:
    probe = SmtpProbe(port)
    probe.start()
    try:
        await work
    finally:
        probe.stop.set()
        await asyncio.to_thread(probe.join, 30)
    assert probe.error is None, probe.error
    return probe.latencies


async def test_huge_history_search_leaves_smtp_responsive(tmp_path: Path) -> None:
    async with running(tmp_path) as gw:
        store = gw.gateway.services.store
        assert store is not None
        seeded = await seed_week(store, time.time())
        assert seeded == HOURS * ENTRIES_PER_HOUR

        def search() -> tuple[float, httpx.Response]:
            started = time.monotonic()
            response = httpx.get(
                f"{gw.base_url}/api/history",
                params={"since": "30y", "q": "no-such-thing-anywhere"},
                auth=("admin", PASSWORD),
                timeout=120,
            )
            return time.monotonic() - started, response

        job = asyncio.ensure_future(asyncio.to_thread(search))
        latencies = await _probe_while(gw.port, job)
        took, response = job.result()
    assert max(latencies) < PROMPT, f"SMTP stalled {max(latencies):.2f}s during the search"
    # The probe really ran alongside a search that took a while.
    assert took > 0.3 and len(latencies) >= 5, (took, len(latencies))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["count"] == 0
    # Cut to the retained history (stats.history_days = 7), not 30 years.
    assert body["since"] == 7 * DAY


async def test_basic_auth_flood_leaves_smtp_responsive_and_is_throttled(tmp_path: Path) -> None:
    async with running(tmp_path) as gw:

        def flood() -> list[int]:
            codes: list[int] = []
            with httpx.Client(timeout=60) as client:

                def one() -> None:
                    response = client.get(f"{gw.base_url}/api/summary", auth=("admin", "wrong"))
                    codes.append(response.status_code)

                workers = [threading.Thread(target=one) for _ in range(40)]
                for worker in workers:
                    worker.start()
                for worker in workers:
                    worker.join()
            return codes

        job = asyncio.ensure_future(asyncio.to_thread(flood))
        latencies = await _probe_while(gw.port, job)
        codes = job.result()
        # The right password from the throttled address must wait as well.
        throttled = await asyncio.to_thread(
            httpx.get, f"{gw.base_url}/api/summary", auth=("admin", PASSWORD)
        )
    assert max(latencies) < PROMPT, f"SMTP stalled {max(latencies):.2f}s during the flood"
    assert set(codes) <= {401, 429} and codes.count(429) >= 30, sorted(codes)
    # web.max_login_failures = 5, plus one already being checked alongside.
    assert codes.count(401) <= 6
    assert throttled.status_code == 429 and int(throttled.headers["retry-after"]) > 0
