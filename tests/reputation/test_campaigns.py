"""Campaigns in the store: fingerprints sharing a band join one campaign."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from authfakes import make_tx
from fakes import FakeClock
from mailmoat.checks._addr import NetworkSet
from mailmoat.checks.base import Services
from mailmoat.config import Config
from mailmoat.core.scoring import Decision
from mailmoat.core.symbols import Action
from mailmoat.reputation.campaigns import CampaignRecorder, Seen, read_campaign, read_campaigns
from mailmoat.reputation.sources import Sources
from mailmoat.store.sqlite import SqliteStore

NOW = 1_800_000_000.0


def seen(bands: tuple[str, ...], net: str, action: str, n: int, when: float = NOW) -> Seen:
    return Seen(bands, net, action, f"Offer {n}", [f"http://x.example/{n}"], f"Q{n}", when)


async def test_matching_fingerprints_make_one_campaign(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db", clock=FakeClock(NOW))
    recorder = CampaignRecorder(store, Sources(), 86_400, NetworkSet())
    recorder._queue += [
        seen(("a1", "a2", "a3"), "198.51.100.0/24", "reject", 1, NOW - 60),
        seen(("a1", "a2", "a3"), "198.51.100.0/24", "reject", 2),
        seen(("b1", "b2", "b3"), "203.0.113.0/24", "accept", 9),  # unrelated, alone
    ]
    await recorder.flush()
    recorder._queue += [seen(("z1", "a2", "z3"), "192.0.2.0/24", "quarantine", 3, NOW + 60)]
    await recorder.flush()
    campaigns = await read_campaigns(store, NOW + 60)
    assert [c["id"] for c in campaigns] == ["a1"]  # one message is no campaign
    (storm,) = campaigns
    assert storm["volume"] == 3 and storm["source_count"] == 2
    assert storm["verdicts"] == {"quarantine": 1, "reject": 2}
    assert storm["sources"] == {"198.51.100.0/24": 2, "192.0.2.0/24": 1}
    assert (storm["first"], storm["last"]) == (NOW - 60, NOW + 60)
    assert storm["subject"] == "Offer 1" and storm["urls"] == ["http://x.example/1"]
    detail = await read_campaign(store, "a1")
    assert detail is not None and detail["queue_ids"] == ["Q3", "Q2", "Q1"]
    assert await read_campaign(store, "nope") is None
    # A fingerprint seen once is no campaign: only its first message is kept.
    alone = await read_campaigns(store, NOW + 60, min_volume=1, sort="spam_share")
    assert [c["id"] for c in alone] == ["a1"]
    assert await store.get("camp:f:b1") is not None and await store.hgetall("camp:c:b1") == {}
    # Its second message, in a later flush, starts the campaign with the first one counted.
    recorder._queue += [seen(("x1", "b2", "x3"), "203.0.113.0/24", "add_header", 10, NOW + 90)]
    await recorder.flush()
    later = await read_campaign(store, "b1")
    assert later is not None and later["volume"] == 2 and later["first"] == NOW
    assert later["verdicts"] == {"accept": 1, "add_header": 1} and later["subject"] == "Offer 9"
    assert await store.get("camp:f:b1") is None
    await store.close()
    with sqlite3.connect(tmp_path / "s.db") as db:
        for table in ("kv", "hash_key", "list_key"):  # every key expires
            rows = db.execute(f"SELECT expires FROM {table}").fetchall()
            assert rows and all(e <= NOW + 60 + 86_400 for (e,) in rows)


def test_observe_queues_the_bulk_fingerprint_the_transaction_carries() -> None:
    recorder = CampaignRecorder(SqliteStore(":memory:"), Sources(), 86_400, NetworkSet())
    services = Services(Config(), clock=FakeClock(NOW))
    decision = Decision(Action.QUARANTINE, 9.0)
    message = b"From: a@example.org\r\nSubject: Offer\r\n\r\nBuy now\r\n"
    unprinted = make_tx(message, ip="198.51.100.7")
    recorder.observe(services, unprinted, decision)
    assert recorder._queue == []  # no fingerprint (body too short, bulk disabled)
    printed = make_tx(message, ip="198.51.100.7")
    printed.bulk_fingerprint = ("b1", "b2", "b3")
    recorder.observe(services, printed, decision)
    (queued,) = recorder._queue
    assert (queued.bands, queued.action, queued.subject) == (
        ("b1", "b2", "b3"),
        "quarantine",
        "Offer",
    )
    assert (queued.queue_id, queued.time) == (printed.queue_id, NOW)
