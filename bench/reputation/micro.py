"""Reputation bookkeeping alone: CPU per transaction of the recorder.

Feeds ``--records`` transaction records (a storm: addresses spread over
``--networks`` /24s, all in one AS of a prefix table, nine in ten refused)
to a ``ReputationRecorder`` on a SQLite store under /dev/shm (else /tmp),
flushing every ``--batch`` records as the gateway's timer would, and prints
the CPU time per record on the transaction's path (the call) and at flush
time (the store writes). Then the campaigns' flush per message, for unique
messages (each fingerprint seen once: ham) and for a storm (one
fingerprint), the messages queued as the verdict observer queues them.

    .venv/bin/python bench/reputation/micro.py [--records 50000] [--batch 500]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import tempfile
import time
from pathlib import Path

from mailmoat.checks._addr import NetworkSet
from mailmoat.config import Config, ReputationConfig
from mailmoat.core.record import TransactionRecord
from mailmoat.reputation.campaigns import CampaignRecorder, Seen
from mailmoat.reputation.recorder import ReputationRecorder
from mailmoat.reputation.sources import Sources
from mailmoat.store.sqlite import SqliteStore


def records(count: int, networks: int) -> list[TransactionRecord]:
    now = time.time()
    return [
        TransactionRecord(
            queue_id=f"Q{n}",
            client_ip=f"10.{n % networks}.{n % 7}.{n % 250 + 1}",
            client_rdns="",
            helo="bot",
            mail_from="x@storm.example",
            rcpts=("u@example.org",),
            action="reject" if n % 10 else "accept",
            reason="score" if n % 10 else "delivered",
            score=20.0,
            symbols=(),
            time=now,
        )
        for n in range(count)
    ]


async def measure(count: int, batch: int, networks: int, root: Path) -> tuple[float, float]:
    table = root / "prefixes.csv"
    table.write_text("10.0.0.0/8,64512,storm\n")
    config = dataclasses.replace(
        Config(), reputation=ReputationConfig(prefix_table=str(table), own_networks=())
    )
    store = SqliteStore(root / "store.db")
    recorder = ReputationRecorder(store, config)
    items = records(count, networks)
    call = flush = 0.0
    for start in range(0, count, batch):
        began = time.process_time()
        for item in items[start : start + batch]:
            recorder(item)
        call += time.process_time() - began
        began = time.process_time()
        await recorder.flush()
        flush += time.process_time() - began
    await store.close()
    return call / count, flush / count


async def measure_campaigns(count: int, batch: int, root: Path, unique: bool) -> float:
    store = SqliteStore(root / f"campaigns-{unique}.db")
    recorder = CampaignRecorder(store, Sources(), 604_800, NetworkSet())
    now = time.time()
    spent = 0.0
    for start in range(0, count, batch):
        for n in range(start, min(count, start + batch)):
            bands = tuple(f"{n if unique else 0}-{band}" for band in range(5))
            recorder._queue.append(
                Seen(
                    bands,
                    f"10.{n % 20}.0.0/24",
                    "reject",
                    "offer",
                    ["http://x.example/"],
                    f"Q{n}",
                    now,
                )
            )
        began = time.process_time()
        await recorder.flush()
        spent += time.process_time() - began
    await store.close()
    return spent / count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=500, help="records per flush")
    parser.add_argument("--networks", type=int, default=20)
    args = parser.parse_args()
    base = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())
    with tempfile.TemporaryDirectory(dir=base) as root:
        call, flush = asyncio.run(measure(args.records, args.batch, args.networks, Path(root)))
        unique = asyncio.run(measure_campaigns(args.records, args.batch, Path(root), True))
        storm = asyncio.run(measure_campaigns(args.records, args.batch, Path(root), False))
    print(f"records {args.records}, {args.batch} per flush, {args.networks} networks")
    print(f"on the transaction's path {call * 1e6:7.2f} us per record")
    print(f"at flush time             {flush * 1e6:7.2f} us per record")
    print(f"in all                    {(call + flush) * 1e6:7.2f} us per record")
    print(f"campaigns, unique mail    {unique * 1e6:7.2f} us per message at flush time")
    print(f"campaigns, one storm      {storm * 1e6:7.2f} us per message at flush time")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
