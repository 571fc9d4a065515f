"""History searches for the dashboard: bounded, and never on the event loop.

Contract: ``HistoryReader.page(config, store, filters, since=, end=, ...)``
searches the transaction history (``stats.history.search_page``) in a worker
thread with its own event loop and its own connection to ``store.url``, so
the loop the gateway's SMTP front shares with the dashboard keeps answering
while hours of history are decompressed and filtered. It bounds every
search: the window to ``stats.history_days`` (nothing older is kept), the
result to ``MAX_PAGE`` entries, the time to ``budget`` seconds (then a
partial page with ``more``) and the number running at once to
``concurrency`` (later ones wait their turn). A ``:memory:`` store cannot be
reopened from another thread; it is searched on the loop (tests only).
Store failures raise ``StoreError``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from mailmoat.config import Config
from mailmoat.stats import history as hist
from mailmoat.stats.counters import DAY
from mailmoat.store import open_store
from mailmoat.store.base import Store

MAX_PAGE = 1000
DEFAULT_BUDGET = 10.0


@dataclass(frozen=True)
class Window:
    """The time range one search covers, after the bounds."""

    start: float
    end: float
    since: float  # seconds before ``now`` actually searched


def bounded_window(config: Config, now: float, since: float, end: float | None = None) -> Window:
    """``[now - since, end)`` clipped to the retained history."""
    keep = config.stats.history_days * DAY
    since = max(0.0, min(since, keep))
    stop = now + 1 if end is None else max(now - keep, min(end, now + 1))
    return Window(now - since, stop, since)


class HistoryReader:
    def __init__(self, concurrency: int = 2, budget: float = DEFAULT_BUDGET) -> None:
        self._slots = asyncio.Semaphore(max(1, concurrency))
        self.budget = budget

    async def page(
        self,
        config: Config,
        store: Store,
        filters: hist.Filters,
        window: Window,
        *,
        node: str | None = None,
        limit: int = 200,
    ) -> hist.Page:
        limit = max(1, min(MAX_PAGE, limit))
        url = config.store.url

        async def search(target: Store) -> hist.Page:
            return await hist.search_page(
                target,
                filters,
                start=window.start,
                end=window.end,
                node=node,
                limit=limit,
                budget=self.budget,
            )

        def in_thread() -> hist.Page:
            async def with_own_store() -> hist.Page:
                own = open_store(url)
                try:
                    return await search(own)
                finally:
                    await own.close()

            return asyncio.run(with_own_store())

        async with self._slots:
            if ":memory:" in url:
                return await search(store)
            return await asyncio.to_thread(in_thread)

    async def find(
        self, config: Config, store: Store, queue_id: str, now: float
    ) -> list[dict[str, Any]]:
        """Every record of one queue id within the retained history."""
        window = bounded_window(config, now, config.stats.history_days * DAY)
        found = await self.page(config, store, hist.Filters(queue_id=queue_id), window, limit=50)
        return [e for e in found.entries if e.get("queue_id") == queue_id]
