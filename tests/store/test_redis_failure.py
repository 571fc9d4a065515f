"""RedisStore when Redis is down or frozen: StoreError within the timeout,
one clear log line per outage, and recovery once Redis answers again."""

from __future__ import annotations

import time

import pytest

from mailmoat.store import StoreError, open_store
from mailmoat.store.redis import RedisStore
from servers import Redis

pytestmark = pytest.mark.integration


async def test_frozen_redis_gives_store_error_within_timeout(
    redis_server: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    store = open_store(f"{redis_server.url}?timeout=0.3")
    assert isinstance(store, RedisStore)
    await store.set("k", b"v", 60)
    redis_server.pause()
    try:
        for operation in (store.get("k"), store.incr("n", 1, 60), store.push("l", b"x", 3, 60)):
            started = time.monotonic()
            with pytest.raises(StoreError):
                await operation
            assert time.monotonic() - started < 1.5
    finally:
        redis_server.resume()
    assert await store.get("k") == b"v"
    outages = [r for r in caplog.records if "store=redis unavailable" in r.getMessage()]
    recoveries = [r for r in caplog.records if "store=redis recovered" in r.getMessage()]
    assert len(outages) == 1
    assert len(recoveries) == 1
    await store.close()


async def test_killed_redis_then_restart(redis_server: Redis) -> None:
    store = open_store(f"{redis_server.url}?timeout=0.5")
    assert await store.incr("n", 1, 60) == 1
    redis_server.kill()
    with pytest.raises(StoreError):
        await store.incr("n", 1, 60)
    with pytest.raises(StoreError):
        await store.ping()
    redis_server.restart()
    # Pooled connections died with the server; the store reconnects by itself.
    assert await store.incr("n", 1, 60) == 1  # data is gone with the restart
    await store.ping()
    await store.close()


async def test_every_key_has_an_expiry_and_the_prefix(redis_server: Redis) -> None:
    import redis.asyncio as aioredis

    store = open_store(f"{redis_server.url}?prefix=site1:")
    await store.set("a", b"1", 60)
    await store.add("b", b"1", 60)
    await store.compare_and_set("c", None, b"1", 60)
    await store.incr("d", 1, 60)
    await store.hincr("e", "f", 1, 60)
    await store.hset("g", "f", b"1", 60)
    await store.push("h", b"1", 5, 60)
    raw = aioredis.Redis.from_url(redis_server.url)
    keys = sorted([k.decode() async for k in raw.scan_iter("*")])
    assert keys == [
        "site1:h:e",
        "site1:h:g",
        "site1:k:a",
        "site1:k:b",
        "site1:k:c",
        "site1:k:d",
        "site1:l:h",
    ]
    for key in keys:
        ttl = await raw.pttl(key)
        assert 0 < ttl <= 60_000, (key, ttl)
    await raw.aclose()
    await store.close()


def test_bad_url_parameters() -> None:
    with pytest.raises(StoreError):
        open_store("redis://127.0.0.1:1/0?timeout=soon")
