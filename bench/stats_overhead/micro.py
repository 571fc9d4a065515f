"""The recorder's own CPU cost per transaction, without a gateway around it.

Feeds N realistic ``TransactionRecord``s (3 symbols, 1-2 recipients, a mix of
actions and 500 client addresses) to a ``StatsRecorder`` on a SQLite store,
flushing every 1 000 records as a busy gateway would every few seconds, and
prints the CPU microseconds per record for the hot path (the call the
pipeline makes) and for the flush share. Compare with the gateway's CPU per
message from ``run.py`` to get the overhead without load-noise.

    .venv/bin/python bench/stats_overhead/micro.py [--records 50000]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from mailmoat.config import StatsConfig
from mailmoat.core.record import TransactionRecord
from mailmoat.core.symbols import Symbol
from mailmoat.stats.recorder import StatsRecorder
from mailmoat.store import SqliteStore

ACTIONS = [("accept", "score"), ("add_header", "score"), ("reject", "dnsbl")]


def make(i: int) -> TransactionRecord:
    action, reason = ACTIONS[i % len(ACTIONS)]
    return TransactionRecord(
        queue_id=f"Q{i:011X}",
        client_ip=f"198.51.{i % 2}.{i % 250}",
        client_rdns="mail.sender.example",
        helo="mail.sender.example",
        mail_from=f"user{i % 50}@sender{i % 7}.example",
        rcpts=("bob@example.org",) if i % 2 else ("bob@example.org", "carol@example.org"),
        action=action,
        reason=reason,
        score=3.5,
        symbols=(
            Symbol("HDR_MISSING_DATE", 1.0),
            Symbol("HELO_NOT_FQDN", 1.0, "mail"),
            Symbol("BAYES_SPAM", 1.5, "0.93"),
        ),
        size=4096,
        subject=f"Quarterly figures {i}",
        message_id=f"<{i}@sender.example>",
        reply="250 2.0.0 Ok: queued",
        duration=0.012,
    )


async def main(count: int) -> None:
    records = [make(i) for i in range(count)]
    with tempfile.TemporaryDirectory(dir="/dev/shm" if Path("/dev/shm").is_dir() else None) as d:
        store = SqliteStore(Path(d) / "store.db")
        recorder = StatsRecorder(store, StatsConfig(), "bench")
        hot = flush = 0.0
        for start in range(0, count, 1000):
            t0 = time.process_time()
            for record in records[start : start + 1000]:
                recorder(record)
            t1 = time.process_time()
            await recorder.flush()
            t2 = time.process_time()
            hot += t1 - t0
            flush += t2 - t1
        await store.close()
    print(f"records: {count}")
    print(f"hot path (pipeline recorder call): {hot / count * 1e6:6.1f} us CPU/record")
    print(f"flush share (store writes, history): {flush / count * 1e6:6.1f} us CPU/record")
    print(f"total:                               {(hot + flush) / count * 1e6:6.1f} us CPU/record")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=50_000)
    asyncio.run(main(parser.parse_args().records))
