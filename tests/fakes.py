"""In-memory stand-ins for the outside world, for fast unit tests.

``FakeResolver`` answers from a table (missing names are NXDOMAIN) and
records every query; ``FakeClock`` is a settable clock for ``Services.clock``
and ``SqliteStore(":memory:", clock=...)``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
from collections.abc import Iterable

from mailmoat.checks.base import Services
from mailmoat.config import Config
from mailmoat.core.transaction import Session, Transaction
from mailmoat.dns import DnsAnswer
from mailmoat.pipeline import Pipeline
from mailmoat.store import SqliteStore

# ``[ratelimit]`` with every limit off and nothing exempt (tests come from
# loopback): a test switches on only the limits it is about.
RATELIMITS_OFF: dict[str, object] = {
    "exempt": (),
    "connections_per_ip": 0,
    "connections_per_net": 0,
    "concurrent_per_ip": 0,
    "concurrent_per_net": 0,
    "messages_per_ip": 0,
    "messages_per_sender": 0,
    "recipients_per_ip": 0,
    "recipients_per_sender": 0,
}


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


def make_config(**sections: object) -> Config:
    """``Config`` with some sections replaced: ``make_config(greylist=GreylistConfig(...))``."""
    return dataclasses.replace(Config(), **sections)  # type: ignore[arg-type]


def make_services(
    config: Config | None = None,
    *,
    clock: FakeClock | None = None,
    resolver: FakeResolver | None = None,
) -> Services:
    clock = clock or FakeClock()
    return Services(
        config=config or Config(),
        store=SqliteStore(":memory:", clock=clock),
        resolver=resolver,
        clock=clock,
    )


def pipeline_of(services: Services, module: str) -> Pipeline:
    """A pipeline with the checks of one check module (e.g. "mailmoat.checks.dnsbl")."""
    return Pipeline(services, importlib.import_module(module).build(services))


def new_tx(ip: str = "192.0.2.1", helo: str = "mx.example.org", sender: str = "") -> Transaction:
    return Transaction(Session(client_ip=ip, helo=helo), mail_from=sender)


async def end_session(tx: Transaction) -> None:
    """Run the session's cleanups, as the SMTP front does at disconnect."""
    for cleanup in tx.session.cleanups:
        await cleanup()
    tx.session.cleanups.clear()
