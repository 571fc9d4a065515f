"""The whole data stage over the SpamAssassin corpus: messages per second, p99.

Every check in the registry runs (``build_checks``) through the real
``Pipeline`` with the real ``CachingResolver`` and a SQLite store. DNS is
answered by a private NSD on loopback (``tests/servers.Nsd``: response rate
limiting off), authoritative for the common
top-level domains (so every lookup of a corpus name gets a real, cacheable
NXDOMAIN instead of leaving the machine) and for the DNSBL/DBL test zones
the config points at. The corpus archives are read as bytes at run time
(never copied into the repository); line ends become CRLF as on the wire.

    .venv/bin/python bench/pipeline/run.py [--limit N] [--concurrency 16] [--passes 1]
        [--disable classifier,bulk] [--sa-rules on|off]

Prints messages per second (wall clock, one process, one event loop: one
core) and the p50/p99 time per message (from start of the data stage to its
decision, concurrency included). ``--sa-rules on`` (the default, as in the
embedded config) loads SpamAssassin's stock rules into the rules check
(``[rules] sa_default``); the line printed says how many rules ran and
whether the multi-pattern engine was used. Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from mailmoat import runtime  # noqa: E402
from mailmoat.checks.base import Services  # noqa: E402
from mailmoat.checks.registry import build_checks  # noqa: E402
from mailmoat.config import (  # noqa: E402
    CheckSettings,
    Config,
    DnsblConfig,
    DnsConfig,
    RulesConfig,
    SmtpConfig,
    StoreConfig,
    UrlblConfig,
)
from mailmoat.core.symbols import Stage  # noqa: E402
from mailmoat.core.transaction import Session, Transaction  # noqa: E402
from mailmoat.dns import resolver_from_config  # noqa: E402
from mailmoat.pipeline import Pipeline  # noqa: E402
from mailmoat.rules import engine  # noqa: E402
from mailmoat.rules.sources import load_configured  # noqa: E402
from mailmoat.store import open_store  # noqa: E402
from servers import Nsd  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus" / "spamassassin"
TLD_NAMES = "com net org edu gov de uk us info biz ca au fr jp nl ru it es br ch se cn kr tw"
TLDS = TLD_NAMES.split()


def load_corpus(limit: int) -> list[bytes]:
    messages: list[bytes] = []
    for archive in sorted(CORPUS.glob("*.tar.xz")):
        with tarfile.open(archive) as tar:
            for member in tar:
                if not member.isfile() or member.name.endswith("cmds"):
                    continue
                handle = tar.extractfile(member)
                if handle is None:
                    continue
                raw = handle.read()
                messages.append(raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
                if len(messages) >= limit:
                    return messages
    return messages


def zones() -> dict[str, str]:
    found = {tld: "nic IN A 192.0.2.1\n" for tld in TLDS}
    found["zen.test"] = "2.0.2.192 IN A 127.0.0.2\n"
    found["dbl.test"] = "spam-domain.com IN A 127.0.1.2\n"
    return found


def envelope(raw: bytes, n: int) -> tuple[str, str, str]:
    """(client ip, helo, mail from) made up from the message's own From."""
    head = raw.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    sender = ""
    for line in head.split("\r\n"):
        if line.lower().startswith(("return-path:", "from:")) and "@" in line:
            sender = line.split("<")[-1].split(">")[0].split()[-1].strip("<>")
            break
    domain = sender.rpartition("@")[2] or "unknown.example"
    return f"198.51.{n % 200}.{n % 250 + 1}", f"mail.{domain}", sender


def transaction(n: int, raw: bytes) -> Transaction:
    """Corpus message ``n`` as a transaction, with its made-up envelope."""
    ip, helo, sender = envelope(raw, n)
    tx = Transaction(Session(client_ip=ip, helo=helo), mail_from=sender, data=raw)
    tx.rcpts.append("user@localhost")
    return tx


async def run(messages: list[bytes], services: Services, concurrency: int) -> list[float]:
    pipeline = Pipeline(services, build_checks(services))
    times: list[float] = []
    gate = asyncio.Semaphore(concurrency)

    async def one(n: int, raw: bytes) -> None:
        tx = transaction(n, raw)
        async with gate:
            started = time.perf_counter()
            await pipeline.run(Stage.DATA, tx)
            times.append(time.perf_counter() - started)

    await asyncio.gather(*(one(n, raw) for n, raw in enumerate(messages)))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--limit", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--passes", type=int, default=1)
    parser.add_argument("--disable", default="", help="check names to leave out, comma-separated")
    parser.add_argument(
        "--sa-rules", choices=("on", "off"), default="on", help="load SpamAssassin's rules"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    messages = load_corpus(args.limit)
    with tempfile.TemporaryDirectory(prefix="mm-bench-") as tmp, Nsd(zones()) as nsd:
        config = Config(
            smtp=SmtpConfig(hostname="mx.bench.test"),
            dns=DnsConfig(nameserver=f"127.0.0.1:{nsd.port}", timeout=2.0),
            dnsbl=DnsblConfig(sites=("ZEN:zen.test*3",)),
            urlbl=UrlblConfig(zones=("DBL:dbl.test=127.0.1.[2..199]*4",)),
            store=StoreConfig(url=f"sqlite:///{tmp}/bench.db"),
            checks={n: CheckSettings(enabled=False) for n in args.disable.split(",") if n},
            rules=RulesConfig(sa_default=args.sa_rules == "on"),
        )
        rule_set, _ = load_configured(config.rules)
        engine_name = "hyperscan" if engine.available() else "pure Python"
        print(f"rules: {len(rule_set)} loaded (SpamAssassin's: {args.sa_rules}; {engine_name})")
        # As in a gateway worker, what was built is frozen out of the
        # collector's sight (a tree from before runtime.freeze_heap: not).
        freeze_heap = getattr(runtime, "freeze_heap", None)
        if freeze_heap is not None:
            freeze_heap()
        resolver = resolver_from_config(config.dns)  # its cache is kept across passes
        for n in range(args.passes):
            # A fresh store file per pass (the bulk, greylist and rate counters
            # start empty); only the resolver's cache carries over.
            store = open_store(f"sqlite:///{tmp}/bench-{n + 1}.db")
            services = Services(config=config, store=store, resolver=resolver)
            started, cpu = time.perf_counter(), time.process_time()
            times = asyncio.run(run(messages, services, args.concurrency))
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
            times.sort()
            p50 = statistics.median(times)
            p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
            checks = ",".join(sorted({c.name for c in build_checks(services)}))
            print(
                f"pass {n + 1}: {len(messages)} messages in {elapsed:.1f} s: "
                f"{len(messages) / elapsed:.0f} messages/s; "
                f"per message p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms "
                f"(concurrency {args.concurrency}); {cpu:.1f} s CPU: "
                f"{len(messages) / cpu:.0f} messages per CPU second"
            )
        print(f"checks: {checks}")


if __name__ == "__main__":
    main()
