"""In-memory stand-ins for the outside world, for fast unit tests.

``FakeResolver`` answers from a table (missing names are NXDOMAIN) and
records every query; ``FakeClock`` is a settable clock for ``Services.clock``
and ``SqliteStore(":memory:", clock=...)``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from mailmoat.dns import DnsAnswer


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeResolver:
    def __init__(self, delay: float = 0.0) -> None:
        self.table: dict[tuple[str, str], DnsAnswer] = {}
        self.queries: list[tuple[str, str]] = []
        self.delay = delay

    def add(self, name: str, rdtype: str, *records: str, ttl: int = 300) -> None:
        self.table[(name.lower(), rdtype)] = DnsAnswer("ok", tuple(records), ttl)

    def fail(self, name: str, rdtype: str, status: str = "timeout") -> None:
        self.table[(name.lower(), rdtype)] = DnsAnswer(status)  # type: ignore[arg-type]

    def nodata(self, name: str, rdtype: str) -> None:
        self.table[(name.lower(), rdtype)] = DnsAnswer("nodata", (), 60)

    def add_many(self, rows: Iterable[tuple[str, str, str]]) -> None:
        for name, rdtype, record in rows:
            self.add(name, rdtype, record)

    async def resolve(self, name: str, rdtype: str) -> DnsAnswer:
        self.queries.append((name.lower(), rdtype))
        if self.delay:
            await asyncio.sleep(self.delay)
        return self.table.get((name.lower(), rdtype), DnsAnswer("nxdomain", (), 60))
