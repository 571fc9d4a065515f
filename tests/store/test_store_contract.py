"""The Store contract, run against every backend.

Backends: ``SqliteStore(":memory:")`` with a fake clock (TTL logic without
sleeping), ``SqliteStore`` on a file opened by several instances (atomicity
across processes sharing one file) and ``RedisStore`` against a real
redis-server on loopback (``tests/servers.py``; skipped locally when the
binary is missing, a failure under CI=true).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from mailmoat.store import Store, open_store
from mailmoat.store.sqlite import SqliteStore
from servers import Redis


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Backend:
    name: str
    store: Store
    # Let ``seconds`` of store time pass (fake clock, or a real sleep).
    advance: Callable[[float], Awaitable[None]]
    # A new, independent instance on the same shared state (None: private).
    open_shared: Callable[[], Store] | None


def _make(kind: str, tmp_path: Path, redis_server_lazy: Callable[[], Redis]) -> Backend:
    if kind == "sqlite-memory":
        clock = FakeClock()

        async def tick(seconds: float) -> None:
            clock.now += seconds

        return Backend(kind, SqliteStore(":memory:", clock), tick, None)
    if kind == "sqlite-file":
        url = f"sqlite:///{tmp_path / 'shared.db'}"
        return Backend(kind, open_store(url), asyncio.sleep, lambda: open_store(url))
    redis = redis_server_lazy()
    url = f"{redis.url}?prefix=test:&timeout=2"
    return Backend(kind, open_store(url), asyncio.sleep, lambda: open_store(url))


REDIS = pytest.param("redis", marks=pytest.mark.integration)


@contextlib.asynccontextmanager
async def _opened(
    request: pytest.FixtureRequest, tmp_path: Path, redis_server_lazy: Callable[[], Redis]
) -> AsyncIterator[Backend]:
    made = _make(request.param, tmp_path, redis_server_lazy)
    try:
        yield made
    finally:
        await made.store.close()


@pytest.fixture(params=["sqlite-memory", "sqlite-file", REDIS])
async def backend(
    request: pytest.FixtureRequest, tmp_path: Path, redis_server_lazy: Callable[[], Redis]
) -> AsyncIterator[Backend]:
    async with _opened(request, tmp_path, redis_server_lazy) as made:
        yield made


@pytest.fixture(params=["sqlite-file", REDIS])
async def shared_backend(
    request: pytest.FixtureRequest, tmp_path: Path, redis_server_lazy: Callable[[], Redis]
) -> AsyncIterator[Backend]:
    """Backends several processes (here: threads with own connections) share."""
    async with _opened(request, tmp_path, redis_server_lazy) as made:
        yield made


@pytest.fixture
def redis_server_lazy(request: pytest.FixtureRequest) -> Callable[[], Redis]:
    return lambda: request.getfixturevalue("redis_server")  # type: ignore[no-any-return]


# Real-time backends use short TTLs; the fake clock does not care.
TTL = 0.4


async def test_set_get_delete(backend: Backend) -> None:
    store = backend.store
    assert await store.get("a") is None
    await store.set("a", b"\x00binary\xff", 60)
    assert await store.get("a") == b"\x00binary\xff"
    await store.set("a", b"two", 60)
    assert await store.get("a") == b"two"
    await store.delete("a")
    assert await store.get("a") is None
    await store.delete("never-there")


async def test_values_expire(backend: Backend) -> None:
    store = backend.store
    await store.set("short", b"x", TTL)
    await store.set("long", b"y", 60)
    assert await store.get("short") == b"x"
    await backend.advance(TTL + 0.3)
    assert await store.get("short") is None
    assert await store.get("long") == b"y"


async def test_add_only_when_absent_or_expired(backend: Backend) -> None:
    store = backend.store
    assert await store.add("k", b"first", TTL) is True
    assert await store.add("k", b"second", TTL) is False
    assert await store.get("k") == b"first"
    await backend.advance(TTL + 0.3)
    assert await store.add("k", b"third", 60) is True
    assert await store.get("k") == b"third"


async def test_get_many_in_key_order(backend: Backend) -> None:
    store = backend.store
    assert await store.get_many([]) == []
    await store.set("m1", b"one", 60)
    await store.set("m3", b"three", TTL)
    await store.incr("counter", 5, 60)
    assert await store.get_many(["m3", "nope", "m1", "m3"]) == [b"three", None, b"one", b"three"]
    assert await store.get_many(["counter"]) == [b"5"]
    await backend.advance(TTL + 0.3)
    assert await store.get_many(["m1", "m3"]) == [b"one", None]


async def test_add_many_creates_only_absent_or_expired_keys(backend: Backend) -> None:
    store = backend.store
    assert await store.add_many({}, 60) == frozenset()
    await store.set("taken", b"old", 60)
    await store.set("stale", b"old", TTL)
    await backend.advance(TTL + 0.3)
    created = await store.add_many({"taken": b"new", "stale": b"new", "fresh": b"new"}, TTL)
    assert created == {"stale", "fresh"}
    assert await store.get_many(["taken", "stale", "fresh"]) == [b"old", b"new", b"new"]
    assert await store.add_many({"fresh": b"again"}, 60) == frozenset()
    await backend.advance(TTL + 0.3)  # the added keys carry the given TTL
    assert await store.get_many(["taken", "fresh"]) == [b"old", None]


async def test_incr_many_counts_each_key_in_key_order(backend: Backend) -> None:
    store = backend.store
    assert await store.incr_many([], 1, 60) == []
    await store.incr("live", 4, 60)
    await store.incr("stale", 9, TTL)
    await store.set("text", b"7", 60)  # a value written as bytes counts on from it
    await backend.advance(TTL + 0.3)
    values = await store.incr_many(["stale", "live", "new", "text", "live", "new"], 2, TTL)
    assert values == [2, 6, 2, 9, 8, 4]
    await backend.advance(TTL * 0.6)
    # Like incr, the window is fixed when a counter is made, not extended.
    assert await store.incr_many(["live", "new"], 1, TTL) == [9, 5]
    await backend.advance(TTL * 0.6 + 0.1)
    assert await store.incr_many(["new", "live"], -1, 60) == [-1, 8]
    many = [f"k{n % 250}" for n in range(600)]  # more keys than one statement takes
    assert await store.incr_many(many, 1, 60) == [1 + n // 250 for n in range(600)]


async def test_compare_and_set(backend: Backend) -> None:
    store = backend.store
    assert await store.compare_and_set("c", b"x", b"1", 60) is False
    assert await store.get("c") is None
    assert await store.compare_and_set("c", None, b"1", 60) is True
    assert await store.compare_and_set("c", None, b"2", 60) is False
    assert await store.compare_and_set("c", b"0", b"2", 60) is False
    assert await store.compare_and_set("c", b"1", b"2", 60) is True
    assert await store.get("c") == b"2"


async def test_incr_window_is_fixed_at_creation(backend: Backend) -> None:
    store = backend.store
    assert await store.incr("n", 1, TTL) == 1
    assert await store.incr("n", 5, TTL) == 6
    await backend.advance(TTL * 0.6)
    # A later increment must not extend the window.
    assert await store.incr("n", 1, TTL) == 7
    await backend.advance(TTL * 0.6 + 0.1)
    assert await store.incr("n", 1, TTL) == 1
    assert await store.incr("m", -2, 60) == -2


async def test_hash_counters_and_values(backend: Backend) -> None:
    store = backend.store
    assert await store.hgetall("h") == {}
    assert await store.hincr("h", "accept", 1, 60) == 1.0
    assert await store.hincr("h", "accept", 2.5, 60) == 3.5
    await store.hset("h", "note", b"12", 60)
    assert await store.hget("h", "note") == b"12"
    assert await store.hget("h", "missing") is None
    # Counters read back as numbers, hset values as bytes (even numeric ones).
    assert await store.hgetall("h") == {"accept": 3.5, "note": b"12"}
    await store.hdel("h", "note")
    assert await store.hgetall("h") == {"accept": 3.5}


async def test_hash_increments_in_one_round_trip(backend: Backend) -> None:
    store = backend.store
    await store.hincr("h1", "a", 1, TTL)
    await store.hincr_many([("h1", "a", 2), ("h1", "b", 0.5), ("h2", "a", 4), ("h1", "a", 1)], TTL)
    await store.hincr_many([], TTL)
    assert await store.hgetall("h1") == {"a": 4.0, "b": 0.5}
    assert await store.hgetall("h2") == {"a": 4.0}
    await backend.advance(TTL + 0.3)
    assert await store.hgetall("h1") == {} and await store.hgetall("h2") == {}


async def test_hash_ttl_refreshed_by_writes(backend: Backend) -> None:
    store = backend.store
    await store.hincr("h", "a", 1, TTL)
    await backend.advance(TTL * 0.6)
    await store.hset("h", "b", b"v", TTL)  # refreshes the whole hash
    await backend.advance(TTL * 0.6)
    assert await store.hgetall("h") == {"a": 1.0, "b": b"v"}
    await backend.advance(TTL + 0.3)
    assert await store.hgetall("h") == {}
    assert await store.hget("h", "a") is None
    # A fresh hash after expiry starts from zero.
    assert await store.hincr("h", "a", 1, 60) == 1.0


async def test_capped_list_newest_first(backend: Backend) -> None:
    store = backend.store
    for i in range(7):
        await store.push("l", f"m{i}".encode(), 5, 60)
    assert await store.range("l", 0, -1) == [b"m6", b"m5", b"m4", b"m3", b"m2"]
    assert await store.range("l", 1, 2) == [b"m5", b"m4"]
    assert await store.range("l", 3, -1) == [b"m3", b"m2"]
    assert await store.range("nothing", 0, -1) == []


async def test_list_expires(backend: Backend) -> None:
    store = backend.store
    await store.push("l", b"a", 10, TTL)
    await backend.advance(TTL + 0.3)
    assert await store.range("l", 0, -1) == []
    await store.push("l", b"b", 10, 60)
    assert await store.range("l", 0, -1) == [b"b"]


async def test_delete_drops_every_kind(backend: Backend) -> None:
    store = backend.store
    await store.set("x", b"1", 60)
    await store.hset("x", "f", b"2", 60)
    await store.push("x", b"3", 5, 60)
    await store.delete("x")
    assert await store.get("x") is None
    assert await store.hgetall("x") == {}
    assert await store.range("x", 0, -1) == []


async def test_ping_and_purge(backend: Backend) -> None:
    await backend.store.ping()
    await backend.store.set("gone", b"1", TTL)
    await backend.advance(TTL + 0.3)
    assert await backend.store.purge() >= 0
    assert await backend.store.get("gone") is None


# -- atomicity across instances ----------------------------------------------

WORKERS = 4
OPS = 150


def _in_threads(open_shared: Callable[[], Store], work: Callable[[Store, int], Awaitable[None]]):
    """Run ``work(store, worker_no)`` in WORKERS threads, each with its own event
    loop and its own store instance: real contention on the shared backend."""
    errors: list[BaseException] = []

    def worker(number: int) -> None:
        async def main() -> None:
            store = open_shared()
            try:
                await work(store, number)
            finally:
                await store.close()

        try:
            asyncio.run(main())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors


async def test_concurrent_incr_loses_nothing(shared_backend: Backend) -> None:
    backend = shared_backend
    assert backend.open_shared is not None
    seen: list[int] = []

    async def work(store: Store, _number: int) -> None:
        results = await asyncio.gather(*(store.incr("hits", 1, 60) for _ in range(OPS)))
        seen.extend(results)

    await asyncio.to_thread(_in_threads, backend.open_shared, work)
    total = WORKERS * OPS
    assert await backend.store.incr("hits", 0, 60) == total
    # Every increment saw a distinct value: no two callers read the same count.
    assert sorted(seen) == list(range(1, total + 1))


async def test_concurrent_compare_and_set_has_one_winner_per_value(shared_backend: Backend) -> None:
    backend = shared_backend
    assert backend.open_shared is not None
    wins: list[int] = []
    rounds = 40

    async def work(store: Store, number: int) -> None:
        for value in range(rounds):
            expected = None if value == 0 else str(value).encode()
            # Everyone races to move the value from ``value`` to ``value+1``.
            while True:
                current = await store.get("cas")
                if current == str(value + 1).encode() or (
                    current is not None and int(current) > value + 1
                ):
                    break
                if current != expected:
                    await asyncio.sleep(0)
                    continue
                if await store.compare_and_set("cas", expected, str(value + 1).encode(), 60):
                    wins.append(value)
                    break

    await asyncio.to_thread(_in_threads, backend.open_shared, work)
    assert sorted(wins) == list(range(rounds))
    assert await backend.store.get("cas") == str(rounds).encode()


async def test_concurrent_add_has_one_winner(shared_backend: Backend) -> None:
    backend = shared_backend
    assert backend.open_shared is not None
    winners: list[int] = []

    async def work(store: Store, number: int) -> None:
        for key in range(30):
            if await store.add(f"lock:{key}", str(number).encode(), 60):
                winners.append(key)

    await asyncio.to_thread(_in_threads, backend.open_shared, work)
    assert sorted(winners) == list(range(30))


async def test_concurrent_add_many_has_one_winner_per_key(shared_backend: Backend) -> None:
    backend = shared_backend
    assert backend.open_shared is not None
    winners: list[str] = []

    async def work(store: Store, number: int) -> None:
        for batch in range(10):
            keys = {f"many:{batch}:{k}": str(number).encode() for k in range(3)}
            winners.extend(await store.add_many(keys, 60))

    await asyncio.to_thread(_in_threads, backend.open_shared, work)
    assert sorted(winners) == sorted(f"many:{b}:{k}" for b in range(10) for k in range(3))


async def test_concurrent_hincr_and_push(shared_backend: Backend) -> None:
    backend = shared_backend
    assert backend.open_shared is not None

    async def work(store: Store, number: int) -> None:
        await asyncio.gather(
            *(store.hincr("stats", "n", 0.5, 60) for _ in range(OPS)),
            *(store.push("log", f"{number}:{i}".encode(), 50, 60) for i in range(OPS)),
        )

    await asyncio.to_thread(_in_threads, backend.open_shared, work)
    assert await backend.store.hgetall("stats") == {"n": WORKERS * OPS * 0.5}
    assert len(await backend.store.range("log", 0, -1)) == 50
