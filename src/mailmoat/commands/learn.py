"""``mailmoat learn --spam PATH... --ham PATH...``: teach the classifier.

Each PATH is a message file, a directory (recursive), a Maildir or an mbox
(``mailmoat.message.sources``). Messages are learned into a model *file*:
``--model FILE``, else ``classifier.model_path`` from ``--config``. If that
file does not exist yet it starts as a copy of the shipped default model, so
local learning refines the default; the file is replaced atomically at the
end. Point ``classifier.model_path`` at it for the gateway to use it.
(The dashboard's learn action updates the model shared in the store
instead: ``mailmoat.classify.learn_message``.)

Spam and ham are interleaved one by one so the online learner never sees a
long run of one class. By default only messages the model gets wrong or
nearly wrong change it (train on error); ``--force`` learns every message.
Progress goes to stderr every two seconds. Exit status 2 when no model
file is named, it is not a model, or a PATH does not exist.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from mailmoat.classify import Classifier, ModelFormatError
from mailmoat.config import load_config
from mailmoat.message import parse_message
from mailmoat.message.sources import iter_messages


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--spam", nargs="+", default=[], metavar="PATH", help="spam messages")
    parser.add_argument("--ham", nargs="+", default=[], metavar="PATH", help="ham messages")
    parser.add_argument("--model", help="model file to update (default: classifier.model_path)")
    parser.add_argument("--config", help="TOML config file")
    parser.add_argument("--force", action="store_true", help="learn every message, not errors")


def _labelled(paths: Sequence[str], is_spam: bool) -> Iterator[tuple[bool, bytes]]:
    for path in paths:
        for _, raw in iter_messages(path):
            yield is_spam, raw


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    target = args.model or config.classifier.model_path
    if not target:
        print(
            "mailmoat learn: name a model file (--model or classifier.model_path)", file=sys.stderr
        )
        return 2
    missing = [p for p in [*args.spam, *args.ham] if not Path(p).exists()]
    if missing:
        print(f"mailmoat learn: no such file or directory: {missing[0]}", file=sys.stderr)
        return 2
    try:
        classifier = Classifier.load(target if Path(target).exists() else None)
    except (OSError, ModelFormatError) as exc:
        print(f"mailmoat learn: {target}: {exc}", file=sys.stderr)
        return 2
    streams = itertools.zip_longest(_labelled(args.spam, True), _labelled(args.ham, False))
    seen = changed = spam = 0
    started = last_report = time.monotonic()
    for pair in streams:
        for item in pair:
            if item is None:
                continue
            is_spam, raw = item
            seen += 1
            spam += is_spam
            changed += classifier.learn(parse_message(raw), is_spam, force=args.force)
        now = time.monotonic()
        if now - last_report >= 2.0:
            print(f"learn: {seen} messages, {changed} learned", file=sys.stderr, flush=True)
            last_report = now
    classifier.save(target)
    print(
        f"learned {changed} of {seen} messages ({spam} spam, {seen - spam} ham) "
        f"in {time.monotonic() - started:.1f} s into {target}"
    )
    return 0
