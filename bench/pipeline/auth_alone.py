"""The data stage without the content checks: CPU per message of the rest.

The checks and envelopes of ``offline.py`` (no DNS: every name answers
NXDOMAIN at once, ``tests/fakes.FakeResolver``) with the content checks
switched off (``[checks.NAME] enabled = false`` for rules, bulk, classifier,
urlbl and attachments), so what is timed is SPF, DKIM/ARC, DMARC,
Authentication-Results, the header and size checks and the runner's own
bookkeeping (waves, evidence, scores, decision): a few percent of a
message's CPU, too little to see beside the content checks on a shared box.
Each pass gets fresh checks and store; prints every pass and the best, in
microseconds of CPU (``time.process_time``) per message.

    .venv/bin/python bench/pipeline/auth_alone.py [--limit N] [--passes 5]
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

from run import envelope, load_corpus

from fakes import FakeResolver
from mailmoat.checks.base import Services
from mailmoat.checks.registry import build_checks
from mailmoat.config import CheckSettings, Config, DnsblConfig, SmtpConfig, UrlblConfig
from mailmoat.core.symbols import Stage
from mailmoat.core.transaction import Session, Transaction
from mailmoat.pipeline import Pipeline
from mailmoat.store.sqlite import SqliteStore

CONTENT_CHECKS = ("rules", "bulk", "classifier", "urlbl", "attachments")


async def one_pass(messages: list[bytes], config: Config, store_path: str) -> float:
    """Seconds of CPU per message for one pass over ``messages``."""
    services = Services(config=config, store=SqliteStore(store_path), resolver=FakeResolver())
    pipeline = Pipeline(services, build_checks(services))
    started = time.process_time()
    for n, raw in enumerate(messages):
        ip, helo, sender = envelope(raw, n)
        tx = Transaction(Session(client_ip=ip, helo=helo), mail_from=sender, data=raw)
        tx.rcpts.append("user@localhost")
        await pipeline.run(Stage.DATA, tx)
    return (time.process_time() - started) / max(len(messages), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--limit", type=int, default=100_000)
    parser.add_argument("--passes", type=int, default=5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    messages = load_corpus(args.limit)
    config = Config(
        smtp=SmtpConfig(hostname="mx.bench.test"),
        dnsbl=DnsblConfig(sites=("ZEN:zen.test*3",)),
        urlbl=UrlblConfig(zones=("DBL:dbl.test=127.0.1.[2..199]*4",)),
        checks={name: CheckSettings(enabled=False) for name in CONTENT_CHECKS},
    )
    cpu: list[float] = []
    with tempfile.TemporaryDirectory(prefix="mm-bench-") as tmp:
        for n in range(args.passes):
            cpu.append(asyncio.run(one_pass(messages, config, f"{tmp}/auth-{n + 1}.db")))
            print(f"pass {n + 1}: {len(messages)} messages, {cpu[-1] * 1e6:.1f} us CPU per message")
    print(f"best: {min(cpu) * 1e6:.1f} us CPU per message")


if __name__ == "__main__":
    main()
