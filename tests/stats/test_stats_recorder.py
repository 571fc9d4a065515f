"""The recorder: counters per resolution, top lists, history, failures, events."""

from __future__ import annotations

import time
from typing import Any

import pytest

from mailmoat.config import StatsConfig
from mailmoat.core.record import TransactionRecord
from mailmoat.core.symbols import Symbol
from mailmoat.stats import Filters, StatsRecorder, read_totals, search
from mailmoat.stats.counters import DAY, HOUR, fields_for, floor, read_all_time
from mailmoat.stats.series import read_events, read_top
from mailmoat.store import SqliteStore, StoreError

NOW = floor(time.time(), HOUR) + 1800.0


def record(**overrides: Any) -> TransactionRecord:
    values: dict[str, Any] = {
        "queue_id": "ABC123",
        "client_ip": "192.0.2.7",
        "client_rdns": "host.sender.example",
        "helo": "host.sender.example",
        "mail_from": "alice@Sender.Example",
        "rcpts": ("Bob@example.org",),
        "action": "accept",
        "reason": "score",
        "score": 1.5,
        "symbols": (Symbol("HDR_MISSING_DATE", 1.5, "no date"),),
        "subject": "quarterly figures",
        "size": 1234,
        "time": NOW,
    }
    values.update(overrides)
    return TransactionRecord(**values)


@pytest.mark.parametrize(
    ("action", "reason", "fields"),
    [
        ("accept", "score", ["msg:accept"]),
        ("add_header", "score", ["msg:add_header"]),
        ("reject", "relay_denied", ["msg:reject", "rej:relay_denied"]),
        ("soft_reject", "greylist", ["msg:soft_reject", "tmp:greylist"]),
        ("reject", "Weird Reason!", ["msg:reject", "rej:weird_reason"]),
        ("bogus", "x", ["msg:reject", "rej:x"]),
    ],
)
def test_fields_for(action: str, reason: str, fields: list[str]) -> None:
    assert fields_for(record(action=action, reason=reason)) == fields


async def test_flush_writes_every_resolution_tops_and_history() -> None:
    store = SqliteStore(":memory:", clock=lambda: NOW)
    recorder = StatsRecorder(store, StatsConfig(), "n1", clock=lambda: NOW)
    recorder(record())
    recorder(record(queue_id="Q2", action="reject", reason="dnsbl", client_ip="192.0.2.99"))
    recorder.count_connection()
    assert await read_all_time(store, "n1") == {}  # nothing before the flush
    await recorder.flush()
    for start, end in ((NOW - 60, NOW + 1), (NOW - 3 * DAY, NOW + 1), (NOW - 90 * DAY, NOW + 1)):
        totals = await read_totals(store, start, end, now=NOW)
        assert totals.messages == 2 and totals.by_prefix("rej:") == {"dnsbl": 1}
        assert totals.counts["connections"] == 1
    assert (await read_all_time(store, "n1"))["msg:accept"] == 1
    assert await read_top(store, "net24", NOW - 60, NOW) == [("192.0.2.0/24", 2)]
    assert await read_top(store, "sender_domain", NOW - 60, NOW) == [("sender.example", 2)]
    assert await read_top(store, "rcpt", NOW - 60, NOW) == [("bob@example.org", 2)]
    entries = await search(store, Filters(), start=NOW - 60, end=NOW + 1)
    assert [e["queue_id"] for e in entries] == ["ABC123", "Q2"]
    assert entries[0]["symbol_details"] == {"HDR_MISSING_DATE": "no date"}
    assert entries[0]["node"] == "n1"


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (Filters(client_ip="192.0.2.0/24"), ["A", "B"]),
        (Filters(client_ip="198.51.100."), ["C"]),
        (Filters(client_ip="192.0.2.1"), ["A"]),
        (Filters(q="FIGURES"), ["A"]),
        (Filters(q="HDR_BAD"), ["B"]),
        (Filters(symbol="hdr_bad"), ["B"]),
        (Filters(rcpt="carol"), ["C"]),
        (Filters(action="reject", reason="dnsbl"), ["C"]),
        (Filters(min_score=5), ["B", "C"]),
        (Filters(max_score=1), ["A"]),
        (Filters(mail_from="nobody"), []),
    ],
)
async def test_history_filters(filters: Filters, expected: list[str]) -> None:
    store = SqliteStore(":memory:", clock=lambda: NOW)
    recorder = StatsRecorder(store, StatsConfig(), "n1", clock=lambda: NOW)
    recorder(record(queue_id="A", client_ip="192.0.2.1", score=0.5, time=NOW - 3))
    recorder(
        record(
            queue_id="B",
            client_ip="192.0.2.200",
            subject="hello",
            score=7.0,
            symbols=(Symbol("HDR_BAD_FROM", 7.0),),
            time=NOW - 2,
        )
    )
    recorder(
        record(
            queue_id="C",
            client_ip="198.51.100.4",
            subject="win",
            rcpts=("carol@example.org",),
            action="reject",
            reason="dnsbl",
            score=9.0,
            time=NOW - 1,
        )
    )
    await recorder.flush()
    found = await search(store, filters, start=NOW - 60, end=NOW + 1)
    assert sorted(e["queue_id"] for e in found) == expected


async def test_history_cap_drops_and_counts() -> None:
    store = SqliteStore(":memory:", clock=lambda: NOW)
    recorder = StatsRecorder(store, StatsConfig(history_max_per_hour=3), "n1", clock=lambda: NOW)
    for i in range(5):
        recorder(record(queue_id=f"Q{i}"))
    await recorder.flush()
    assert len(await search(store, Filters(), start=NOW - 60, end=NOW + 1)) == 3
    counts = await read_all_time(store, "n1")
    assert counts["msg:accept"] == 5 and counts["history_dropped"] == 2


class FlakyStore(SqliteStore):
    fail = True

    async def hincr(self, key: str, field: str, amount: float, ttl: float) -> float:
        if self.fail:
            raise StoreError("down")
        return await super().hincr(key, field, amount, ttl)


async def test_store_failure_keeps_counts_for_the_next_flush() -> None:
    store = FlakyStore(":memory:", clock=lambda: NOW)
    recorder = StatsRecorder(store, StatsConfig(), "n1", clock=lambda: NOW)
    recorder(record())
    await recorder.flush()  # logged, not raised
    assert await read_all_time(store, "n1") == {}
    store.fail = False
    recorder(record(queue_id="Q2"))
    await recorder.stop()  # the final flush writes both
    assert (await read_all_time(store, "n1"))["msg:accept"] == 2
    assert len(await search(store, Filters(), start=NOW - 60, end=NOW + 1)) == 2


async def test_events_from_stored_days_show_the_drop() -> None:
    store = SqliteStore(":memory:", clock=lambda: NOW)
    recorder = StatsRecorder(store, StatsConfig(), "n1", clock=lambda: NOW)
    today = floor(NOW, DAY)
    for days_ago in range(12, 0, -1):
        spam = 100 if days_ago > 3 else 25
        for i in range(spam):
            recorder(record(action="add_header", time=today - days_ago * DAY + 600 + i))
    await recorder.flush()
    events = await read_events(store, StatsConfig(), NOW)
    daily = [e for e in events if e.step == DAY and e.series == "spam"]
    assert [(e.time, e.text) for e in daily] == [(today - 3 * DAY, "spam -75% vs 7-day median")]
