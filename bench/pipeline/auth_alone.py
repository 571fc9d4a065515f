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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))

from offline import bench_config, one_pass
from run import load_corpus

CONTENT_CHECKS = ("rules", "bulk", "classifier", "urlbl", "attachments")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--limit", type=int, default=100_000)
    parser.add_argument("--passes", type=int, default=5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    messages = load_corpus(args.limit)
    config = bench_config(sa_rules=False, disabled=CONTENT_CHECKS)
    cpu: list[float] = []
    with tempfile.TemporaryDirectory(prefix="mm-bench-") as tmp:
        for n in range(args.passes):
            cpu.append(asyncio.run(one_pass(messages, config, f"{tmp}/auth-{n + 1}.db")))
            print(f"pass {n + 1}: {len(messages)} messages, {cpu[-1] * 1e6:.1f} us CPU per message")
    print(f"best: {min(cpu) * 1e6:.1f} us CPU per message")


if __name__ == "__main__":
    main()
