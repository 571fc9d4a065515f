"""Cluster throughput: two gateways on one Redis against one gateway on SQLite.

Postfix's ``smtp-source`` (``-s 20`` parallel sessions, 4 KiB messages)
sends ``--messages`` messages:

1. to one ``mailmoat serve`` whose store is SQLite (the embedded default);
2. to two ``mailmoat serve`` processes sharing one ``redis-server``, half of
   the messages (and of the sessions) to each, at the same time.

Every node delivers to its Maildir (fsync before 250). The stateful
screening checks run (rate limits with loopback not exempt: store counters
at connect, MAIL and RCPT; pregreet and greylisting off so that every
message is delivered); DNS-based checks are off (loopback only). It prints
messages per second for each setup and, from Redis ``INFO commandstats``
before and after, the Redis commands (round trips) per message.

    .venv/bin/python bench/cluster/run.py [--messages 4000]

Needs Debian's postfix (smtp-source) and redis-server; loopback only.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from cluster.nodes import DOMAIN, Node  # noqa: E402
from servers import Redis  # noqa: E402

SMTP_SOURCE = "/usr/sbin/smtp-source"
SCREENING = """
[greylist]
enabled = false
[ratelimit]
exempt = []
connections_per_ip = 10000000
connections_per_net = 10000000
messages_per_ip = 10000000
messages_per_sender = 10000000
recipients_per_ip = 10000000
recipients_per_sender = 10000000
concurrent_per_ip = 100000
concurrent_per_net = 100000
"""


def source(port: int, messages: int, sessions: int) -> None:
    argv = [SMTP_SOURCE, "-s", str(sessions), "-l", "4096", "-m", str(messages)]
    argv += ["-f", "bench@sender.test", "-t", f"user@{DOMAIN}", f"127.0.0.1:{port}"]
    subprocess.run(argv, check=True, timeout=600, stdout=subprocess.DEVNULL)


def load(nodes: list[Node], messages: int, sessions: int = 20) -> float:
    """Send ``messages`` split over ``nodes``; messages per second delivered."""
    share = messages // len(nodes)
    threads = [
        threading.Thread(target=source, args=(n.port, share, sessions // len(nodes))) for n in nodes
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    delivered = sum(len(list((n.maildir / "new").iterdir())) for n in nodes)
    if delivered != share * len(nodes):
        raise SystemExit(f"delivered {delivered} of {share * len(nodes)}")
    return delivered / elapsed


# Commands that only run inside our Lua scripts (incr) or inside MULTI/EXEC
# blocks, which travel in the same round trip as their EVALSHA/EXEC.
_INNER = ("incrby", "pttl", "hincrbyfloat", "hset", "lpush", "ltrim", "pexpire", "multi")


def redis_calls(redis: Redis) -> tuple[int, int]:
    """(commands executed, client round trips) so far, INFO excluded."""
    import redis as redis_py

    client = redis_py.Redis(host="127.0.0.1", port=redis.port)
    stats = client.info("commandstats")
    client.close()
    calls = {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}
    calls.pop("info", None)
    total = sum(calls.values())
    return total, total - sum(calls.get(name, 0) for name in _INNER)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=4000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mm-bench-cluster-") as tmp:
        work = Path(tmp)
        single = Node("sqlite", work, f"sqlite:///{work}/state.db", SCREENING).start()
        try:
            load([single], 200)  # warm-up
            for f in (single.maildir / "new").iterdir():
                f.unlink()
            sqlite_rate = load([single], args.messages)
        finally:
            single.stop()
        redis = Redis().start()
        nodes = [Node(n, work, redis.url, SCREENING).start() for n in ("A", "B")]
        try:
            load(nodes, 200)
            for node in nodes:
                for f in (node.maildir / "new").iterdir():
                    f.unlink()
            before = redis_calls(redis)
            redis_rate = load(nodes, args.messages)
            after = redis_calls(redis)
            time.sleep(6)  # one stats flush interval: count it in the per-message figure
            flushed = redis_calls(redis)
        finally:
            for node in nodes:
                node.stop()
            redis.stop()
    commands = (after[0] - before[0]) / args.messages
    trips = (after[1] - before[1]) / args.messages
    trips_stats = (flushed[1] - before[1]) / args.messages
    print(f"messages: {args.messages}, smtp-source -s 20 -l 4096")
    print(f"one node, SQLite store:          {sqlite_rate:8.0f} msg/s")
    print(f"two nodes, one Redis:            {redis_rate:8.0f} msg/s")
    print(f"ratio two-on-Redis / one-SQLite: {redis_rate / sqlite_rate:8.2f}")
    print(f"Redis round trips per message:   {trips:8.2f} (with the stats flush {trips_stats:.2f})")
    print(f"Redis commands per message:      {commands:8.2f} (Lua and MULTI inner included)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
