"""Recording outcomes per source and the REPUTATION_* check reading them back,
on SQLite and, for a cluster, on one real Redis shared by two gateways."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

import pytest

from fakes import FakeClock, end_session, new_tx
from mailmoat.checks.base import Services
from mailmoat.checks.reputation import build
from mailmoat.config import Config, ListsConfig
from mailmoat.core.symbols import Evidence
from mailmoat.reputation.recorder import ReputationRecorder
from mailmoat.store import open_store
from mailmoat.store.base import Store
from mailmoat.store.sqlite import SqliteStore
from reputation_support import record, reputation_config
from servers import Redis

NOW = 1_700_000_000.0


async def symbols_for(store: Store, config: Config, ip: str, clock: FakeClock) -> dict[str, str]:
    services = Services(config=config, store=store, clock=clock)
    (check,) = build(services)
    tx = new_tx(ip)
    evidence = Evidence()
    await check.run(tx, evidence)
    await end_session(tx)
    return {s.name: s.detail for s in evidence.symbols}


async def test_storm_from_a_network_makes_its_neighbours_bad(tmp_path: Path) -> None:
    clock = FakeClock(NOW)
    store = SqliteStore(tmp_path / "store.db", clock=clock)
    config = reputation_config()
    recorder = ReputationRecorder(store, config)
    for n in range(30):
        recorder(record(f"198.51.100.{n % 10 + 1}", "reject", "score", NOW))
    for _ in range(10):
        recorder(record("203.0.113.5", "accept", "delivered", NOW))
    recorder(record("203.0.113.9", "reject", "relay_denied", NOW))  # not evidence
    assert await symbols_for(store, config, "198.51.100.1", clock) == {}  # nothing flushed yet
    await recorder.flush()

    bad = await symbols_for(store, config, "198.51.100.1", clock)
    assert set(bad) == {"REPUTATION_BAD_NET", "REPUTATION_BAD_AS"}  # 3 from this address: < 5
    assert bad["REPUTATION_BAD_NET"].startswith("198.51.100.0/24: 30 of 30")
    neighbour = await symbols_for(store, config, "198.51.100.200", clock)
    assert set(neighbour) == {"REPUTATION_BAD_NET", "REPUTATION_BAD_AS"}
    good = await symbols_for(store, config, "203.0.113.5", clock)
    assert good == {"REPUTATION_GOOD_IP": "203.0.113.5: 10 of 10 accepted"}
    assert await symbols_for(store, config, "203.0.113.9", clock) == {}
    await store.close()

    # Every key the counts use expires: no row without a deadline.
    with sqlite3.connect(tmp_path / "store.db") as db:
        rows = db.execute("SELECT key, expires FROM hash_key WHERE key LIKE 'rep:%'").fetchall()
    assert rows and all(NOW < expires <= NOW + config.reputation.retention for _, expires in rows)


async def test_the_counts_fade_and_are_forgotten(tmp_path: Path) -> None:
    clock = FakeClock(NOW)
    store = SqliteStore(":memory:", clock=clock)
    config = reputation_config(min_messages=5, cache_seconds=0)
    recorder = ReputationRecorder(store, config)
    for _ in range(8):
        recorder(record("198.51.100.7", "quarantine", "score", NOW))
    await recorder.flush()
    assert "REPUTATION_BAD_IP" in await symbols_for(store, config, "198.51.100.7", clock)
    clock.advance(86_400)  # half-life: 8 -> 4, under min_messages
    assert await symbols_for(store, config, "198.51.100.7", clock) == {}
    for _ in range(3):
        recorder(record("198.51.100.7", "accept", "delivered", clock()))
    await recorder.flush()
    clock.advance(config.reputation.retention - 3600)  # the first hour is past retention
    await symbols_for(store, config, "198.51.100.7", clock)
    fields = await store.hgetall("rep:s:ip:198.51.100.7")
    assert [name[0] for name in fields] == ["a"]  # the old hour was pruned on reading


async def test_own_and_allow_listed_networks_are_never_counted() -> None:
    clock = FakeClock(NOW)
    store = SqliteStore(":memory:", clock=clock)
    config = reputation_config()
    config = dataclasses.replace(config, lists=ListsConfig(allow=("198.51.100.7",)))
    recorder = ReputationRecorder(store, config)
    for _ in range(20):
        recorder(record("127.0.0.1", "reject", "score", NOW))
        recorder(record("198.51.100.7", "reject", "score", NOW))
    await recorder.flush()
    assert await store.hgetall("rep:s:ip:127.0.0.1") == {}
    assert await store.hgetall("rep:s:ip:198.51.100.7") == {}


async def test_a_store_failure_keeps_the_counts_for_the_next_flush() -> None:
    clock = FakeClock(NOW)
    store = SqliteStore(":memory:", clock=clock)
    recorder = ReputationRecorder(store, reputation_config())
    for _ in range(6):
        recorder(record("198.51.100.7", "reject", "score", NOW))
    real = store.hincr_many

    async def broken(*_args: object) -> None:
        raise OSError("store down")

    store.hincr_many = broken  # type: ignore[method-assign]
    await recorder.flush()
    store.hincr_many = real  # type: ignore[method-assign]
    await recorder.flush()
    fields = await store.hgetall("rep:s:ip:198.51.100.7")
    assert sum(float(v) for v in fields.values()) == 6


@pytest.mark.integration
async def test_two_gateways_on_one_redis_add_up(redis_server: Redis) -> None:
    import redis.asyncio as aioredis

    clock = FakeClock(NOW)
    config = reputation_config(min_messages=10)
    node_a, node_b = open_store(redis_server.url), open_store(redis_server.url)
    recorder_a, recorder_b = ReputationRecorder(node_a, config), ReputationRecorder(node_b, config)
    for _ in range(6):  # each node alone saw fewer than min_messages
        recorder_a(record("198.51.100.7", "reject", "dnsbl", clock()))
        recorder_b(record("198.51.100.7", "quarantine", "score", clock()))
    await recorder_a.flush()
    assert await symbols_for(node_b, config, "198.51.100.7", clock) == {}
    await recorder_b.flush()
    found = await symbols_for(open_store(redis_server.url), config, "198.51.100.7", clock)
    assert found["REPUTATION_BAD_IP"] == "198.51.100.7: 12 of 12 quarantined or refused"
    raw = aioredis.Redis.from_url(redis_server.url)
    keys = [k async for k in raw.scan_iter("*")]
    ttls = [await raw.ttl(k) for k in keys]
    assert keys and all(0 < ttl <= config.reputation.retention for ttl in ttls), ttls
    await raw.aclose()
    await node_a.close()
    await node_b.close()
