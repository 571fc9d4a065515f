"""SqliteStore: workers starting together open one new file without error;
the settings an opened store writes with."""

from __future__ import annotations

import asyncio
import hashlib
import multiprocessing
import os
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path

from mailmoat.store import sqlite
from mailmoat.store.sqlite import SqliteStore


def _open(path: str, start: Barrier, results: Queue[str]) -> None:
    start.wait()
    try:
        SqliteStore(path)
        results.put("ok")
    except Exception as exc:
        results.put(repr(exc))


def test_processes_opening_a_new_file_at_once_all_succeed(tmp_path: Path) -> None:
    # Switching a new file to WAL fails at once with "database is locked"
    # while another connection does the same: the store retries it.
    context = multiprocessing.get_context("fork")
    outcomes: list[str] = []
    for round_number in range(20):
        path = str(tmp_path / f"store{round_number}.db")
        start = context.Barrier(4)
        results: Queue[str] = context.Queue()
        workers = [context.Process(target=_open, args=(path, start, results)) for _ in range(4)]
        for worker in workers:
            worker.start()
        outcomes += [results.get(timeout=30) for _ in workers]
        for worker in workers:
            worker.join(30)
    assert outcomes == ["ok"] * 80


def test_the_wal_is_checkpointed_only_after_its_longer_interval(tmp_path: Path) -> None:
    # SQLite's default checkpoints (and starts the WAL over) every 1000
    # pages; the store lets the WAL grow to _CHECKPOINT_PAGES first.
    path = str(tmp_path / "s.db")
    store = SqliteStore(path)
    frame = 4096 + 24  # page and frame header

    async def write(rounds: int) -> int:
        """Adds of five new random keys until the WAL holds 1500 frames."""
        for n in range(rounds):
            keys = [hashlib.blake2b(b"%d" % (n * 5 + k)).hexdigest() for k in range(5)]
            await store.add_many(dict.fromkeys(keys, b"198.51.100.0"), 3600)
            if os.path.getsize(path + "-wal") >= 1500 * frame:
                return n
        return rounds

    assert asyncio.run(write(2000)) < 2000
    written = os.path.getsize(path + "-wal")
    assert written < (sqlite._CHECKPOINT_PAGES + 50) * frame
    asyncio.run(store.close())
