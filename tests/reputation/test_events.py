"""Source events: a top spam network going silent, and a new one appearing."""

from __future__ import annotations

import dataclasses

from fakes import FakeClock
from mailmoat.config import StatsConfig
from mailmoat.reputation.events import source_events
from mailmoat.reputation.recorder import ReputationRecorder
from mailmoat.store.sqlite import SqliteStore
from reputation_support import record, reputation_config

NOW = 1_800_000_000.0
HOUR = 3600


async def test_a_silent_top_source_went_dark_and_a_busy_one_did_not() -> None:
    clock = FakeClock(NOW)
    store = SqliteStore(":memory:", clock=clock)
    recorder = ReputationRecorder(store, reputation_config())
    for n in range(60):  # two days ago, from 198.51.100.0/24 (AS64500), then silence
        recorder(record(f"198.51.100.{n % 9 + 1}", "reject", "score", NOW - 48 * HOUR + n))
    for n in range(60):  # still sending now, from 203.0.113.0/24 (AS64501)
        recorder(record("203.0.113.5", "quarantine", "score", NOW - 30 + n % 20))
    for _ in range(10):  # too little spam to be a top source
        recorder(record("192.0.2.1", "reject", "score", NOW - 48 * HOUR))
    await recorder.flush()
    settings = dataclasses.replace(StatsConfig(), source_silence=6 * HOUR, source_min_spam=50)
    texts = sorted(e.text for e in await source_events(store, settings, NOW))
    assert texts == [
        "AS64500 went dark (60 spam messages)",
        "AS64501 appeared (60 spam messages)",
        "network 198.51.100.0/24 went dark (60 spam messages)",
        "network 203.0.113.0/24 appeared (60 spam messages)",
    ]
    dark = [e for e in await source_events(store, settings, NOW) if e.kind == "went dark"]
    assert {e.time for e in dark} == {NOW - 48 * HOUR + 59}  # the last bad message, exactly
    assert all(e.change == -1.0 and e.as_dict()["kind"] == "went dark" for e in dark)
