"""The Store interface: small shared state with expiry, atomic operations.

Contract: every operation is atomic on its own (safe when several gateways
share one backend), every key carries a time to live in seconds (no key lives
forever), and values are bytes (strings/JSON are the caller's choice) except
hash counters, which are numbers. Expired keys read as absent. A backend that
cannot answer raises ``StoreError``; callers map that to the configured fail
mode (``store.fail_mode``), never to a lost message.

Hashes expire as a whole, ``ttl`` seconds after their last write (Redis's
EXPIRE on each write). Lists are capped: ``push`` trims to ``max_len``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable


class StoreError(RuntimeError):
    """The backend failed (down, slow past its timeout, corrupt)."""


@runtime_checkable
class Store(Protocol):
    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl: float) -> None: ...

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """``get`` for several keys in one round trip, values in key order."""
        ...

    async def add(self, key: str, value: bytes, ttl: float) -> bool:
        """Set only if absent; True when this call created the key."""
        ...

    async def add_many(self, values: Mapping[str, bytes], ttl: float) -> frozenset[str]:
        """``add`` for several keys in one round trip (each atomic on its
        own, not all together); the keys this call created."""
        ...

    async def compare_and_set(
        self, key: str, expected: bytes | None, value: bytes, ttl: float
    ) -> bool:
        """Set to ``value`` only if the current value is ``expected`` (None: absent)."""
        ...

    async def delete(self, key: str) -> None: ...

    async def incr(self, key: str, amount: int, ttl: float) -> int:
        """Add to an integer counter; the TTL is set when the counter is created
        (a fixed window), not extended by later increments."""
        ...

    async def incr_many(self, keys: Sequence[str], amount: int, ttl: float) -> list[int]:
        """``incr`` of several keys by ``amount`` in one round trip (each
        atomic on its own, not all together); the new values in key order.
        A key listed twice is incremented twice."""
        ...

    async def hincr(self, key: str, field: str, amount: float, ttl: float) -> float: ...

    async def hincr_many(self, increments: Sequence[tuple[str, str, float]], ttl: float) -> None:
        """``hincr`` of several (key, field, amount) in one round trip, all
        or none; each key touched gets ``ttl``."""
        ...

    async def hset(self, key: str, field: str, value: bytes, ttl: float) -> None: ...

    async def hget(self, key: str, field: str) -> bytes | None: ...

    async def hdel(self, key: str, field: str) -> None: ...

    async def hgetall(self, key: str) -> dict[str, bytes | float]: ...

    async def push(self, key: str, value: bytes, max_len: int, ttl: float) -> None:
        """Prepend to a capped list (newest first)."""
        ...

    async def range(self, key: str, start: int, stop: int) -> list[bytes]:
        """List items ``start`` .. ``stop`` inclusive, newest first (-1: last)."""
        ...

    async def purge(self) -> int:
        """Drop expired keys now; returns how many went. Backends with native
        expiry return 0."""
        ...

    async def ping(self) -> None:
        """Raise StoreError when the backend cannot answer."""
        ...

    async def close(self) -> None: ...
