"""``mailmoat scan [--json] FILE...``: the data-stage checks on stored mail.

Each file is one message (a leading mbox ``From `` line is ignored). Prints
``FILE: action score SYMBOL(score) ...`` per file, or with ``--json`` one
object per line: ``{"file", "action", "score", "symbols": {NAME: score}}``.
Unreadable files are reported on stderr and make the exit status 1.

Without ``--config`` scan touches nothing outside itself: the store is an
in-memory SQLite database (nothing written, no ``./var``) and DNS is
offline (no query is sent; DNS-based checks find no evidence). With
``--config`` it uses that file's ``[store]`` and ``[dns]``, as the gateway
would.
"""

from __future__ import annotations

import argparse
import json
import sys

from mailmoat.config import load_runtime_config
from mailmoat.core.symbols import Stage
from mailmoat.core.transaction import Session, Transaction
from mailmoat.dns import OfflineResolver
from mailmoat.runtime import Runtime, run_loop
from mailmoat.store import SqliteStore
from mailmoat.wire.content import normalize_line_ends


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="message files")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument(
        "--config",
        help="TOML config file; its [store] and [dns] are used (default: embedded "
        "defaults with an in-memory store and no DNS lookups)",
    )


def read_message(path: str) -> bytes:
    with open(path, "rb") as handle:
        raw = handle.read()
    if raw.startswith(b"From "):
        raw = raw.split(b"\n", 1)[1] if b"\n" in raw else b""
    return normalize_line_ends(raw)


async def scan(args: argparse.Namespace) -> int:
    config = load_runtime_config(args.config)
    if args.config is None:
        store = SqliteStore.from_url("sqlite://:memory:")
        runtime = await Runtime.open(config, "scan", store=store, resolver=OfflineResolver())
    else:
        runtime = await Runtime.open(config, "scan", config_path=args.config)
    pipeline = runtime.pipeline
    status = 0
    try:
        for path in args.files:
            try:
                data = read_message(path)
            except OSError as exc:
                print(f"mailmoat scan: {path}: {exc.strerror}", file=sys.stderr)
                status = 1
                continue
            tx = Transaction(Session(client_ip="127.0.0.1", front="scan"), data=data)
            decision = await pipeline.run(Stage.DATA, tx)
            symbols = {s.name: s.score for s in tx.all_symbols}
            if args.json:
                line = {
                    "file": path,
                    "action": decision.action.value,
                    "score": decision.score,
                    "symbols": symbols,
                }
                print(json.dumps(line), flush=True)
            else:
                listed = " ".join(f"{n}({s:g})" for n, s in symbols.items())
                print(f"{path}: {decision.action.value} {decision.score:g} {listed}", flush=True)
    finally:
        await runtime.close()
    return status


def run(args: argparse.Namespace) -> int:
    return run_loop(scan(args))
