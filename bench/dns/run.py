"""CPU per DNS cache miss: ``CachingResolver`` against a private NSD on loopback.

Each round clears the resolver's cache and looks up 8000 names, 16 at a
time, as the checks do: 6000 distinct names under ``com`` (NXDOMAIN with
the zone's SOA, the common answer to a content lookup), 2000 DNSBL-style
names under ``zen.test`` (1000 distinct: the rest share a query in flight
or hit the cache), one TXT and one A record that exist. It prints the
process CPU time per query sent (the Python side of building the query,
sending it, reading and caching the answer; NSD's CPU is not counted).
To compare two trees, run it with ``PYTHONPATH=/tmp/base/src`` for the
other one, alternating.

    .venv/bin/python bench/dns/run.py [--rounds 3]

Needs Debian's nsd package; loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))

from mailmoat.dns import CachingResolver
from servers import Nsd

ZONES = {
    "com": "nic IN A 192.0.2.1\n",
    "zen.test": "2.0.2.192 IN A 127.0.0.2\n",
    "txt.test": 'a IN TXT "v=spf1 -all"\n',
}
NAMES = (
    [(f"host{i}.example{i % 97}.com", "A") for i in range(6000)]
    + [(f"{i % 250}.{i % 200}.51.198.zen.test", "A") for i in range(2000)]
    + [("a.txt.test", "TXT"), ("nic.com", "A")]
)


async def one_round(port: int) -> tuple[int, float]:
    """(queries sent, CPU seconds) for one pass over ``NAMES``."""
    resolver = CachingResolver(f"127.0.0.1:{port}", timeout=2.0)
    gate = asyncio.Semaphore(16)

    async def lookup(name: str, rdtype: str) -> None:
        async with gate:
            await resolver.resolve(name, rdtype)

    await asyncio.gather(*(lookup(n, t) for n, t in NAMES[:500]))  # sockets open, code warm
    resolver.clear()
    sent = resolver.queries
    started = time.process_time()
    await asyncio.gather(*(lookup(n, t) for n, t in NAMES))
    return resolver.queries - sent, time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with Nsd(ZONES) as nsd:
        for _ in range(args.rounds):
            queries, cpu = asyncio.run(one_round(nsd.port))
            print(f"{queries} queries: {cpu / queries * 1e6:.1f} us CPU per query", flush=True)


if __name__ == "__main__":
    main()
