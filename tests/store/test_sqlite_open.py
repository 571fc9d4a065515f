"""SqliteStore: workers starting together open one new file without error."""

from __future__ import annotations

import multiprocessing
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path

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
