"""The data stage's CPU per message over the corpus, without DNS.

The same checks, configuration, envelopes and corpus as ``run.py``, but
every DNS name answers NXDOMAIN at once (``tests/fakes.FakeResolver``: no
network at all) and one message at a time, so the figure is the CPU of the
content path alone: neither the DNS client nor cache expiry on a slow,
shared box (a pass of ``run.py`` that takes minutes outlives its negative
cache) move it. Each pass gets a fresh SQLite store file and freshly built
checks; what was built is frozen first as in a gateway worker
(``runtime.freeze_heap``, when the tree has it).

    .venv/bin/python bench/pipeline/offline.py [--limit N] [--passes 2] [--sa-rules on|off]

Prints the CPU time per message (``time.process_time``) of each pass.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))

from run import load_corpus, transaction

from fakes import FakeResolver
from mailmoat import runtime
from mailmoat.checks.base import Services
from mailmoat.checks.registry import build_checks
from mailmoat.config import (
    CheckSettings,
    Config,
    DnsblConfig,
    RulesConfig,
    SmtpConfig,
    UrlblConfig,
)
from mailmoat.core.symbols import Stage
from mailmoat.pipeline import Pipeline
from mailmoat.rules.sources import load_configured
from mailmoat.store.sqlite import SqliteStore


def bench_config(sa_rules: bool, disabled: tuple[str, ...] = ()) -> Config:
    """The configuration of the offline benchmarks: the DNS lists of ``run.py``
    (every name answers NXDOMAIN here), ``disabled`` checks switched off."""
    return Config(
        smtp=SmtpConfig(hostname="mx.bench.test"),
        dnsbl=DnsblConfig(sites=("ZEN:zen.test*3",)),
        urlbl=UrlblConfig(zones=("DBL:dbl.test=127.0.1.[2..199]*4",)),
        checks={name: CheckSettings(enabled=False) for name in disabled},
        rules=RulesConfig(sa_default=sa_rules),
    )


async def one_pass(messages: list[bytes], config: Config, store_path: str) -> float:
    """Seconds of CPU per message for one pass over ``messages``."""
    services = Services(config=config, store=SqliteStore(store_path), resolver=FakeResolver())
    pipeline = Pipeline(services, build_checks(services))
    started = time.process_time()
    for n, raw in enumerate(messages):
        await pipeline.run(Stage.DATA, transaction(n, raw))
    return (time.process_time() - started) / max(len(messages), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--limit", type=int, default=100_000)
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--sa-rules", choices=("on", "off"), default="off")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    messages = load_corpus(args.limit)
    config = bench_config(args.sa_rules == "on")
    load_configured(config.rules)
    freeze_heap = getattr(runtime, "freeze_heap", None)
    if freeze_heap is not None:
        freeze_heap()
    with tempfile.TemporaryDirectory(prefix="mm-bench-") as tmp:
        for n in range(args.passes):
            cpu = asyncio.run(one_pass(messages, config, f"{tmp}/offline-{n + 1}.db"))
            print(
                f"pass {n + 1}: {len(messages)} messages, {cpu * 1e6:.0f} us CPU per message "
                f"({1 / cpu:.0f} per CPU second)"
            )


if __name__ == "__main__":
    main()
