"""A digest of every corpus message's verdict, to prove a speed change changes none.

The checks, configuration, envelopes and corpus of ``offline.py`` (no DNS:
every name answers NXDOMAIN at once), one message at a time, with a fixed
clock (``time.monotonic`` advanced 3 ms a message), so that the caches that
expire by time (the bulk detector's counts, SPF results) give the same
verdicts however loaded the machine is. For each message it keeps a short
hash of the parsed message (headers, texts, URLs, domains, attachments,
part types, charsets, defects), of the bulk bands, of every symbol with its
score and detail, and of the decision.

    .venv/bin/python bench/pipeline/verdicts.py OUT.json [--every N]
    PYTHONPATH=/tmp/base/src .venv/bin/python bench/pipeline/verdicts.py BASE.json
    .venv/bin/python bench/pipeline/verdicts.py --compare BASE.json OUT.json

``--compare`` prints how many messages differ (and the first of them) and
exits 1 when any does.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))

from offline import bench_config
from run import load_corpus, transaction

from fakes import FakeResolver
from mailmoat.checks.base import Services
from mailmoat.checks.registry import build_checks
from mailmoat.config import Config
from mailmoat.core.symbols import Stage
from mailmoat.pipeline import Pipeline
from mailmoat.rules.sources import load_configured
from mailmoat.store.sqlite import SqliteStore

_now = [1000.0]


def _clock() -> float:
    return _now[0]


def _hash(value: object) -> str:
    return hashlib.sha256(repr(value).encode()).hexdigest()[:16]


async def digests(messages: list[bytes], config: Config, store_path: str) -> dict[str, str]:
    """Message number -> the four hashes of its verdict, space-separated."""
    services = Services(config=config, store=SqliteStore(store_path), resolver=FakeResolver())
    checks = build_checks(services)
    for check in checks:  # a check given a clock when built (bulk): the fixed one
        if hasattr(check, "clock"):
            check.clock = _clock
    pipeline = Pipeline(services, checks)
    found: dict[str, str] = {}
    for n, raw in enumerate(messages):
        _now[0] = 1000.0 + n * 0.003
        tx = transaction(n, raw)
        decision = await pipeline.run(Stage.DATA, tx)
        m = tx.message
        attachments = [
            (a.filename, a.content_type, a.size, _hash(a.payload)) for a in m.attachments
        ]
        parsed = (
            m.headers, m.body_offset, m.text, m.html, m.html_text, m.urls, m.domains,
            attachments, m.part_types, m.charsets, m.parts_count, m.defects,
        )  # fmt: skip
        symbols = [(s.name, round(s.score, 6), s.detail) for s in tx.symbols]
        verdict = (str(decision.action), round(decision.score, 6))
        found[f"{n:05d}"] = " ".join(map(_hash, (parsed, tx.bulk_fingerprint, symbols, verdict)))
    return found


def compare(base_path: str, other_path: str) -> int:
    base = json.loads(Path(base_path).read_text())
    other = json.loads(Path(other_path).read_text())
    differ = [key for key in base if base[key] != other.get(key)]
    print(f"{len(base)} vs {len(other)} messages; {len(differ)} differ")
    for key in differ[:20]:
        print(f"  message {key}: {base[key]} / {other.get(key)}")
    return 1 if differ or len(base) != len(other) else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("out", nargs="?", help="where to write the digests (JSON)")
    parser.add_argument("--every", type=int, default=1, help="every Nth corpus message")
    parser.add_argument("--compare", nargs=2, metavar=("BASE", "OTHER"))
    args = parser.parse_args()
    if args.compare:
        sys.exit(compare(*args.compare))
    if not args.out:
        parser.error("give OUT.json or --compare BASE OTHER")
    logging.basicConfig(level=logging.ERROR)
    time.monotonic = _clock  # read at each call (the SPF result cache)
    messages = load_corpus(100_000)[:: args.every]
    config = bench_config(sa_rules=True)
    load_configured(config.rules)
    with tempfile.TemporaryDirectory(prefix="mm-verdicts-") as tmp:
        found = asyncio.run(digests(messages, config, f"{tmp}/verdicts.db"))
    Path(args.out).write_text(json.dumps(found, indent=0, sort_keys=True))
    print(f"{len(found)} messages digested into {args.out}")


if __name__ == "__main__":
    main()
