"""Redis backend of the Store: several gateways sharing one Redis.

Contract: implements ``mailmoat.store.base.Store`` with the same semantics as
the SQLite backend (the contract suite in ``tests/store`` runs on both).

- Atomicity: every operation is one Redis command, one MULTI/EXEC block or
  one Lua script, so it is atomic against every other gateway. One round trip
  per operation.
- Expiry: every key is written with an expiry (``SET ... PX``, ``PEXPIRE``
  inside the same transaction); ``incr`` sets it only when the counter is
  created (a fixed window), hashes and lists get it refreshed on every write.
- Key layout: ``<prefix>k:<key>`` plain values and counters, ``<prefix>h:<key>``
  hashes, ``<prefix>l:<key>`` capped lists; one logical key may hold all
  three, as in SQLite, and ``delete`` drops all three at once. No KEYS/SCAN
  anywhere.
- Hash values: ``hincr`` fields hold decimal numbers (HINCRBYFLOAT); ``hset``
  values are stored behind a ``\\x00`` tag byte so ``hgetall`` can tell
  bytes from numbers exactly as the SQLite backend does.
- Failure: every operation is bounded by ``timeout`` seconds (socket timeout
  plus an asyncio backstop). Any Redis, socket or timeout error becomes
  ``StoreError``; the first failure after success logs ``store=redis
  unavailable`` once and the first success after failure logs ``store=redis
  recovered``. A connection error is retried once on a fresh connection (a
  pooled connection may be stale after a Redis restart); a timeout is never
  retried (the command may have run).

URL: ``redis://[user:pass@]host:port/db?prefix=mm:&timeout=1.0&max_connections=64``
(also ``rediss://`` and ``unix:///path?db=0``); ``prefix``, ``timeout`` and
``max_connections`` (pool size; callers beyond it wait up to ``timeout``) are
ours, every other query parameter goes to redis-py.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ConstantBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from mailmoat.metrics import count_store_error
from mailmoat.store.base import StoreError

log = logging.getLogger("mailmoat.store")

DEFAULT_PREFIX = "mm:"
DEFAULT_TIMEOUT = 1.0
DEFAULT_POOL = 64
_TAG = b"\x00"

# Compare-and-set: ARGV = expected-present flag, expected, value, ttl ms.
_CAS = """
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '0' then
  if current then return 0 end
elseif current ~= ARGV[2] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
return 1
"""

# Fixed-window counter: the expiry is set when the counter is created (or if
# it somehow has none), never extended by later increments.
_INCR = """
local value = redis.call('INCRBY', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return value
"""


# ``_INCR`` for each of KEYS in turn (one round trip; atomic as a whole,
# which is more than ``incr_many`` promises).
_INCR_MANY = """
local values = {}
for i, key in ipairs(KEYS) do
  values[i] = redis.call('INCRBY', key, ARGV[1])
  if redis.call('PTTL', key) < 0 then
    redis.call('PEXPIRE', key, ARGV[2])
  end
end
return values
"""


def _ms(ttl: float) -> int:
    return max(1, int(ttl * 1000))


class RedisStore:
    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str = DEFAULT_PREFIX,
        timeout: float = DEFAULT_TIMEOUT,
        name: str = "redis",
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.timeout = timeout
        self.name = name
        self.healthy = True
        self._cas = client.register_script(_CAS)
        self._incr = client.register_script(_INCR)
        self._incr_many = client.register_script(_INCR_MANY)

    @classmethod
    def from_url(cls, url: str) -> RedisStore:
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        prefix = query.pop("prefix", DEFAULT_PREFIX)
        try:
            timeout = float(query.pop("timeout", DEFAULT_TIMEOUT))
        except ValueError as exc:
            raise StoreError(f"store url {url!r}: timeout must be a number") from exc
        try:
            pool_size = int(query.pop("max_connections", DEFAULT_POOL))
        except ValueError as exc:
            raise StoreError(f"store url {url!r}: max_connections must be an integer") from exc
        clean = urlunsplit(parts._replace(query=urlencode(query)))
        # A blocking pool: past ``pool_size`` connections, callers queue for
        # one (up to ``timeout``) instead of failing at once.
        pool = aioredis.BlockingConnectionPool.from_url(
            clean,
            max_connections=pool_size,
            timeout=timeout,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(ConstantBackoff(0), 1, supported_errors=(RedisConnectionError,)),
            health_check_interval=30,
        )
        client = aioredis.Redis.from_pool(pool)
        where = parts.netloc.rpartition("@")[2] or parts.path
        return cls(client, prefix=prefix, timeout=timeout, name=f"redis://{where}")

    # -- error and timeout handling -----------------------------------------

    async def _call(self, operation: str, key: str, work: Callable[[], Awaitable[Any]]) -> Any:
        try:
            async with asyncio.timeout(self.timeout * 2 + 0.5):
                result = await work()
        except (RedisError, OSError, TimeoutError) as exc:
            problem = f"{type(exc).__name__}: {exc}"
            if self.healthy:
                log.error(
                    "store=redis unavailable: %s %s failed on %s: %s",
                    operation,
                    key,
                    self.name,
                    problem,
                )
            self.healthy = False
            count_store_error("redis")
            raise StoreError(f"{self.name}: {operation} {key}: {problem}") from exc
        if not self.healthy:
            self.healthy = True
            log.warning("store=redis recovered: %s answers again", self.name)
        return result

    def _k(self, key: str) -> str:
        return f"{self.prefix}k:{key}"

    def _h(self, key: str) -> str:
        return f"{self.prefix}h:{key}"

    def _l(self, key: str) -> str:
        return f"{self.prefix}l:{key}"

    # -- plain keys ---------------------------------------------------------

    async def get(self, key: str) -> bytes | None:
        value: bytes | None = await self._call("get", key, lambda: self.client.get(self._k(key)))
        return value

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        await self._call("set", key, lambda: self.client.set(self._k(key), value, px=_ms(ttl)))

    async def add(self, key: str, value: bytes, ttl: float) -> bool:
        done = await self._call(
            "add", key, lambda: self.client.set(self._k(key), value, px=_ms(ttl), nx=True)
        )
        return bool(done)

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        values: list[bytes | None] = await self._call(
            "get_many", keys[0], lambda: self.client.mget([self._k(k) for k in keys])
        )
        return values

    async def add_many(self, values: Mapping[str, bytes], ttl: float) -> frozenset[str]:
        if not values:
            return frozenset()

        async def send() -> list[Any]:
            pipe = self.client.pipeline(transaction=False)
            for key, value in values.items():
                pipe.set(self._k(key), value, px=_ms(ttl), nx=True)
            done: list[Any] = await pipe.execute()
            return done

        done = await self._call("add_many", next(iter(values)), send)
        return frozenset(key for key, ok in zip(values, done, strict=True) if ok)

    async def compare_and_set(
        self, key: str, expected: bytes | None, value: bytes, ttl: float
    ) -> bool:
        args: list[Any] = [
            "0" if expected is None else "1",
            b"" if expected is None else expected,
            value,
            _ms(ttl),
        ]
        done = await self._call(
            "compare_and_set", key, lambda: self._cas(keys=[self._k(key)], args=args)
        )
        return bool(done)

    async def delete(self, key: str) -> None:
        await self._call(
            "delete", key, lambda: self.client.delete(self._k(key), self._h(key), self._l(key))
        )

    async def incr(self, key: str, amount: int, ttl: float) -> int:
        value = await self._call(
            "incr", key, lambda: self._incr(keys=[self._k(key)], args=[amount, _ms(ttl)])
        )
        return int(value)

    async def incr_many(self, keys: Sequence[str], amount: int, ttl: float) -> list[int]:
        if not keys:
            return []
        names = [self._k(key) for key in keys]
        values = await self._call(
            "incr_many", keys[0], lambda: self._incr_many(keys=names, args=[amount, _ms(ttl)])
        )
        return [int(value) for value in values]

    # -- hashes -------------------------------------------------------------

    async def _multi(self, build: Callable[[Any], None]) -> list[Any]:
        async with self.client.pipeline(transaction=True) as pipe:
            build(pipe)
            result: list[Any] = await pipe.execute()
            return result

    async def hincr(self, key: str, field: str, amount: float, ttl: float) -> float:
        name = self._h(key)

        def build(pipe: Any) -> None:
            pipe.hincrbyfloat(name, field, amount)
            pipe.pexpire(name, _ms(ttl))

        result = await self._call("hincr", key, lambda: self._multi(build))
        return float(result[0])

    async def hincr_many(self, increments: Sequence[tuple[str, str, float]], ttl: float) -> None:
        if not increments:
            return

        def build(pipe: Any) -> None:
            for key, field, amount in increments:
                pipe.hincrbyfloat(self._h(key), field, amount)
            for key in dict.fromkeys(key for key, _, _ in increments):
                pipe.pexpire(self._h(key), _ms(ttl))

        await self._call("hincr_many", increments[0][0], lambda: self._multi(build))

    async def hset(self, key: str, field: str, value: bytes, ttl: float) -> None:
        name = self._h(key)

        def build(pipe: Any) -> None:
            pipe.hset(name, field, _TAG + value)
            pipe.pexpire(name, _ms(ttl))

        await self._call("hset", key, lambda: self._multi(build))

    async def hget(self, key: str, field: str) -> bytes | None:
        raw: bytes | None = await self._call(
            "hget", key, lambda: self.client.hget(self._h(key), field)
        )
        if raw is None:
            return None
        value = _decode_field(raw)
        return value if isinstance(value, bytes) else str(value).encode()

    async def hdel(self, key: str, field: str) -> None:
        await self._call("hdel", key, lambda: self.client.hdel(self._h(key), field))

    async def hgetall(self, key: str) -> dict[str, bytes | float]:
        raw: dict[bytes, bytes] = await self._call(
            "hgetall", key, lambda: self.client.hgetall(self._h(key))
        )
        return {f.decode("utf-8", "surrogateescape"): _decode_field(v) for f, v in raw.items()}

    # -- capped lists -------------------------------------------------------

    async def push(self, key: str, value: bytes, max_len: int, ttl: float) -> None:
        name = self._l(key)

        def build(pipe: Any) -> None:
            pipe.lpush(name, value)
            pipe.ltrim(name, 0, max(0, max_len - 1))
            pipe.pexpire(name, _ms(ttl))

        await self._call("push", key, lambda: self._multi(build))

    async def range(self, key: str, start: int, stop: int) -> list[bytes]:
        items: list[bytes] = await self._call(
            "range", key, lambda: self.client.lrange(self._l(key), start, stop)
        )
        return list(items)

    # -- upkeep -------------------------------------------------------------

    async def purge(self) -> int:
        return 0  # Redis expires keys itself.

    async def ping(self) -> None:
        await self._call("ping", "-", lambda: self.client.ping())

    async def close(self) -> None:
        try:
            await self.client.aclose()
        except (RedisError, OSError) as exc:
            log.info("store=redis close: %s", exc)


def _decode_field(raw: bytes) -> bytes | float:
    if raw.startswith(_TAG):
        return raw[1:]
    try:
        return float(raw)
    except ValueError:
        return raw
