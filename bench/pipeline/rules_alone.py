"""The rules check alone: CPU time per message of SpamAssassin's stock rules.

Loads the rules as the embedded config does (``[rules]`` defaults: the
bundled TOML set and SpamAssassin's stock rules, Hyperscan when installed),
parses every ``--step``-th message of the shared corpus once (parsing is not
the rules' cost), then times ``RuleSet.match_counts`` over them ``--passes``
times and prints the best pass: milliseconds of CPU per message. Also prints
the CPU time the loading took (rule files read, translated and prepared;
Hyperscan databases from the cache when compiled before). No network.

    .venv/bin/python bench/pipeline/rules_alone.py [--step 5] [--passes 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from authfakes import make_tx  # noqa: E402
from mailmoat.classify.corpus import all_sets, find_corpus, unpack  # noqa: E402
from mailmoat.config import RulesConfig  # noqa: E402
from mailmoat.rules import engine  # noqa: E402
from mailmoat.rules.sources import load_configured  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--step", type=int, default=5, help="every N-th corpus message")
    parser.add_argument("--passes", type=int, default=3)
    args = parser.parse_args()
    root = find_corpus(ROOT)
    if root is None:
        sys.exit("shared corpus not found")
    started = time.process_time()
    rules, _ = load_configured(RulesConfig())
    loading = time.process_time() - started
    cache = Path(tempfile.gettempdir()) / f"mailmoat-corpus-{os.getuid()}"
    files = unpack(root, cache, all_sets(root))[:: args.step]
    transactions = [make_tx(path.read_bytes()) for _, path in files]
    parsed = [(tx.message.text, tx.message.html_text, tx.message.urls) for tx in transactions]
    assert len(parsed) == len(transactions)  # each message parsed before timing
    best = float("inf")
    for _ in range(args.passes):
        started = time.process_time()
        for tx in transactions:
            rules.match_counts(tx)
        best = min(best, time.process_time() - started)
    print(
        f"{len(rules)} rules ({rules.engine_rules} through hyperscan: {engine.available()}), "
        f"loaded in {loading:.2f} s CPU; {len(transactions)} messages: "
        f"{best / len(transactions) * 1000:.2f} ms CPU per message (best of {args.passes})"
    )


if __name__ == "__main__":
    main()
