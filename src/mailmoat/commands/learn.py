"""``mailmoat learn --spam|--ham|--forget PATH...``: teach the classifier.

Each PATH is a message file, a directory (recursive), a Maildir or an mbox
(``mailmoat.message.sources``); ``-`` is one message read from stdin (what a
Dovecot imapsieve pipe script passes, docs/feedback.md). Messages go to the
model's one home (``mailmoat.feedback.home_for``), the same the gateway
reads: ``--model FILE`` or ``classifier.model_path`` from ``--config`` when
set (a file that does not exist yet starts as the shipped default model),
else the model shared in the configured store. ``--forget`` takes back what
an earlier learn of the same message did; learning a message again with the
same label changes nothing, with the other label moves it.

Spam and ham are interleaved one by one so the online learner never sees a
long run of one class, and saved in batches of ``BATCH`` messages (one model
version each). Messages from paths are learned only when the model gets them
wrong or nearly wrong (train on error), unless ``--force``; with ``-`` (a
message an admin or user labelled) every message is learned. Learn events
are counted in the statistics (``mailmoat_learn_total``) when ``--config``
is given. Exit status 2 when a
PATH does not exist, stdin holds no message, or the home holds no model;
1 when the store fails.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

from mailmoat.classify import ModelFormatError
from mailmoat.config import Config, load_config
from mailmoat.feedback import FeedbackError, ModelHome, apply_feedback, home_for
from mailmoat.message.sources import iter_messages
from mailmoat.metrics import count_learn
from mailmoat.stats.recorder import StatsRecorder
from mailmoat.store import open_store
from mailmoat.store.base import Store

BATCH = 2000
STDIN = "-"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--spam", nargs="+", default=[], metavar="PATH", help="spam messages")
    parser.add_argument("--ham", nargs="+", default=[], metavar="PATH", help="ham messages")
    parser.add_argument(
        "--forget", nargs="+", default=[], metavar="PATH", help="messages to unlearn"
    )
    parser.add_argument("--model", help="model file (default: the gateway's model, see --config)")
    parser.add_argument("--config", help="TOML config file")
    parser.add_argument("--force", action="store_true", help="learn every message, not errors")


def _labelled(paths: Sequence[str], label: str, stdin: bytes) -> Iterator[tuple[bytes, str]]:
    for path in paths:
        if path == STDIN:
            yield stdin, label
            continue
        for _, raw in iter_messages(path):
            yield raw, label


def _problem(args: argparse.Namespace) -> str | None:
    paths = [*args.spam, *args.ham, *args.forget]
    if not paths:
        return "name messages to learn: --spam, --ham or --forget PATH... ('-' for stdin)"
    if paths.count(STDIN) > 1:
        return "'-' (stdin) can be given once"
    missing = [p for p in paths if p != STDIN and not Path(p).exists()]
    return f"no such file or directory: {missing[0]}" if missing else None


def run(args: argparse.Namespace) -> int:
    problem = _problem(args)
    if problem:
        print(f"mailmoat learn: {problem}", file=sys.stderr)
        return 2
    config = load_config(args.config)
    stdin = sys.stdin.buffer.read() if STDIN in [*args.spam, *args.ham, *args.forget] else b""
    try:
        return asyncio.run(_learn(args, config, stdin))
    except (FeedbackError, ModelFormatError, OSError) as exc:
        print(f"mailmoat learn: {exc}", file=sys.stderr)
        return 2


async def _learn(args: argparse.Namespace, config: Config, stdin: bytes) -> int:
    file_mode = bool(args.model or config.classifier.model_path)
    store: Store | None = None
    if not file_mode or args.config:
        store = open_store(config.store.url)
    home = home_for(config, store, args.model)
    try:
        counts = await _batches(args, home, stdin)
        if args.config and store is not None:
            recorder = StatsRecorder(store, config.stats, config.node)
            for label in ("spam", "ham", "forget"):
                for _ in range(counts[f"label:{label}"]):
                    count_learn(label)
            await recorder.flush()  # drains mailmoat.metrics into the store
    finally:
        await home.close()
        if store is not None:
            await store.close()
    return 0


async def _batches(args: argparse.Namespace, home: ModelHome, stdin: bytes) -> Counter[str]:
    streams = itertools.zip_longest(
        _labelled(args.spam, "spam", stdin),
        _labelled(args.ham, "ham", stdin),
        _labelled(args.forget, "forget", stdin),
    )
    items = (item for group in streams for item in group if item is not None)
    totals: Counter[str] = Counter()
    started = time.monotonic()
    version: int | None = None
    force = args.force or STDIN in [*args.spam, *args.ham, *args.forget]
    seen = 0
    while batch := list(itertools.islice(items, BATCH)):
        result = await apply_feedback(home, batch, force=force, note="mailmoat learn")
        totals.update(result.outcomes)
        totals.update(f"label:{label}" for _raw, label in batch)
        version = result.version if result.version is not None else version
        seen += len(batch)
        if len(batch) == BATCH:
            print(f"learn: {seen} messages so far", file=sys.stderr, flush=True)
    outcomes = ", ".join(f"{n} {k}" for k, n in sorted(totals.items()) if ":" not in k)
    saved = f"version {version}" if version is not None else "unchanged"
    print(
        f"{outcomes or 'no messages'} in {time.monotonic() - started:.1f} s; "
        f"model {saved} in {home.where}"
    )
    return totals
