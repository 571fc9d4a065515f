"""State shared by checks: the Store interface and its backends."""

from __future__ import annotations

import time
from collections.abc import Callable

from mailmoat.store.base import Store, StoreError
from mailmoat.store.sqlite import SqliteStore


def open_store(url: str, clock: Callable[[], float] = time.time) -> Store:
    """Open the backend a ``store.url`` names (sqlite:// or redis://)."""
    if url.startswith("sqlite:"):
        return SqliteStore.from_url(url, clock)
    if url.startswith(("redis://", "rediss://", "unix://")):
        from mailmoat.store.redis import RedisStore

        store: Store = RedisStore.from_url(url)
        return store
    raise StoreError(f"unknown store url {url!r}: use sqlite:///path or redis://host:port/db")


__all__ = ["SqliteStore", "Store", "StoreError", "open_store"]
