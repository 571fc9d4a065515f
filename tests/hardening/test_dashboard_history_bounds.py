"""History queries are bounded: window, page size, time budget.

Against a real SQLite store: ``since`` is cut to ``stats.history_days`` (an
older record kept with a longer TTL is never read), ``limit`` to
``MAX_PAGE``, and ``more``/``next_before`` page through the rest without
gaps or repeats; ``search_page`` stops at its time budget between hours.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from mailmoat.config import Config, StatsConfig, StoreConfig
from mailmoat.stats import history as hist
from mailmoat.stats.counters import DAY, HOUR, NODES_KEY, floor
from mailmoat.store import SqliteStore
from mailmoat.web import create_app, make_dashboard
from mailmoat.web.history_reader import MAX_PAGE

NODE = "gw-bounds"
NOW = 1_800_000_000.0


def _entry(when: float, queue_id: str) -> dict[str, object]:
    return {
        "time": when,
        "queue_id": queue_id,
        "client_ip": "192.0.2.1",
        "mail_from": "a@sender.example",
        "rcpts": ["bob@example.org"],
        "subject": "hello",
        "action": "accept",
        "reason": "",
        "score": 0.0,
        "size": 100,
        "duration": 0.01,
        "symbols": {},
        "node": NODE,
    }


async def _put(store: SqliteStore, entries: list[dict[str, object]]) -> None:
    def hour_of(entry: dict[str, object]) -> int:
        return floor(float(entry["time"]), HOUR)  # type: ignore[arg-type]

    await store.hset(NODES_KEY, NODE, b"1", 60 * DAY)
    for hour, group in itertools.groupby(sorted(entries, key=hour_of), key=hour_of):
        await hist.write_batch(store, NODE, hour, list(group), 60 * DAY)


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, SqliteStore]]:
    config = replace(
        Config(),
        stats=StatsConfig(node=NODE, history_days=7),
        store=StoreConfig(url=f"sqlite:///{tmp_path / 'store.db'}"),
    )
    store = SqliteStore(tmp_path / "store.db", clock=lambda: NOW)
    board = make_dashboard(lambda: config, store)
    board.clock = lambda: NOW
    transport = httpx.ASGITransport(app=create_app(board))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8025") as client:
        yield client, store
    await store.close()


async def test_since_is_cut_to_the_retained_history(api) -> None:
    client, store = api
    await _put(
        store,
        [
            _entry(NOW - 3600, "RECENT"),
            _entry(NOW - 6 * DAY, "SIXDAYS"),
            _entry(NOW - 10 * DAY, "TOOOLD"),
        ],
    )
    body = (await client.get("/api/history", params={"since": "30y"})).json()
    assert body["since"] == 7 * DAY
    assert [e["queue_id"] for e in body["entries"]] == ["RECENT", "SIXDAYS"]
    assert body["more"] is False
    assert "TOOOLD" not in (await client.get("/history?since=30y")).text
    assert (await client.get("/api/message/TOOOLD")).status_code == 404
    assert (await client.get("/api/message/SIXDAYS")).status_code == 200
    summary = (await client.get("/api/summary", params={"since": "30y"})).json()
    assert summary["since"] == StatsConfig().day_retention_days * DAY


async def test_limit_is_capped_and_pages_continue_without_gaps(api) -> None:
    client, store = api
    entries = [_entry(NOW - 10 - i * 2.5, f"Q{i:05d}") for i in range(MAX_PAGE + 300)]
    await _put(store, entries)
    first = (await client.get("/api/history", params={"limit": "1000000"})).json()
    assert first["count"] == MAX_PAGE and first["more"] is True
    seen = [e["queue_id"] for e in first["entries"]]
    before = first["next_before"]
    while True:
        page = (
            await client.get("/api/history", params={"limit": "120", "before": str(before)})
        ).json()
        seen += [e["queue_id"] for e in page["entries"]]
        if not page["more"]:
            break
        before = page["next_before"]
    assert seen == [f"Q{i:05d}" for i in range(MAX_PAGE + 300)]
    bad = await client.get("/api/history", params={"before": "yesterday"})
    assert bad.status_code == 400


async def test_search_stops_at_its_time_budget(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "store.db")
    await _put(store, [_entry(NOW - h * HOUR, f"H{h}") for h in range(48)])
    ticks = itertools.count()
    page = await hist.search_page(
        store,
        hist.Filters(q="nothing matches this"),
        start=NOW - 2 * DAY,
        end=NOW + 1,
        node=NODE,
        budget=5,
        clock=lambda: float(next(ticks)),  # one "second" per hour read
    )
    await store.close()
    assert page.entries == [] and page.more is True
    assert NOW - 8 * HOUR <= page.next_end <= NOW - 3 * HOUR
