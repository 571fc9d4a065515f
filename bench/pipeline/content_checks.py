"""CPU per message of the classifier's features and score and of the bulk check.

The corpus (as ``run.py`` reads it) is parsed once up front; then, per
round, every message goes through ``features.extract``, the classifier
check and the bulk check (with a fresh SQLite store in a temporary
directory, so each round's bulk check writes every key anew). The first
round warms the per-process memos and is not counted; of the other rounds
each message's least time counts (the others lost time to other work on
the machine), and the figures are their mean in microseconds of CPU per
message (``time.process_time``). ``classifier`` is the whole check (its
own ``extract`` of the message and the score). Run it for two trees in
turn with ``PYTHONPATH=<tree>/src`` to compare them on a shared machine.

    .venv/bin/python bench/pipeline/content_checks.py [--limit N] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import envelope, load_corpus

import mailmoat
from mailmoat.checks.bulk import BulkCheck
from mailmoat.checks.classifier import ClassifierCheck
from mailmoat.classify import Classifier
from mailmoat.classify.features import extract
from mailmoat.config import BulkConfig, ClassifierConfig
from mailmoat.core.symbols import Evidence
from mailmoat.core.transaction import Session, Transaction
from mailmoat.store.sqlite import SqliteStore


async def one_round(txs: list[Transaction], path: str) -> dict[str, list[float]]:
    """Each part's CPU seconds per message, in corpus order."""
    classifier = Classifier.load()
    check = ClassifierCheck(classifier, ClassifierConfig())
    bulk = BulkCheck(SqliteStore(path), BulkConfig())
    config = classifier.model.features
    spent: dict[str, list[float]] = {"extract": [], "classifier": [], "bulk": []}
    for tx in txs:
        started = time.process_time()
        extract(tx.message, config)
        middle = time.process_time()
        await check.run(tx, Evidence())
        scored = time.process_time()
        await bulk.run(tx, Evidence())
        spent["extract"].append(middle - started)
        spent["classifier"].append(scored - middle)
        spent["bulk"].append(time.process_time() - scored)
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--limit", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print("using", mailmoat.__file__, file=sys.stderr)
    txs = []
    for n, raw in enumerate(load_corpus(args.limit)):
        ip, helo, sender = envelope(raw, n)
        tx = Transaction(Session(client_ip=ip, helo=helo), mail_from=sender, data=raw)
        tx.message  # noqa: B018 (parsed once, outside the timing)
        txs.append(tx)
    best: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="mm-content-") as tmp:
        for n in range(args.rounds + 1):
            figures = asyncio.run(one_round(txs, f"{tmp}/round{n}.db"))
            for name, times in figures.items():
                if n == 1:
                    best[name] = times
                elif n > 1:
                    best[name] = list(map(min, best[name], times))
    print(f"{len(txs)} messages, each one's least of {args.rounds} rounds, us CPU per message:")
    for name, times in best.items():
        print(f"  {name:11s} {sum(times) / len(times) * 1e6:7.1f}")


if __name__ == "__main__":
    main()
