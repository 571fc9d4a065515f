"""``mailmoat model list|rollback VERSION``: the classifier model's kept versions.

Contract: works on the model's one home (``mailmoat.feedback.home_for``):
``--model FILE``, else ``classifier.model_path`` from ``--config``, else the
model shared in the configured store. ``list`` prints the current version
and one line per kept version (newest first: version, UTC time, messages
learned, what saved it). ``rollback VERSION`` saves that kept version as the
next version (versions only grow, so every gateway picks it up like any
other save) and forgets the ledger entries of messages learned after it, so
a later ``--forget`` does not take back a step the model no longer holds.
Exit status 2 when VERSION is not kept (the kept ones are named).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from mailmoat.classify import ModelConflictError, ModelFormatError
from mailmoat.config import Config, load_config
from mailmoat.feedback import ModelHome, home_for
from mailmoat.store import open_store
from mailmoat.store.base import Store


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("list", "rollback"), help="what to do")
    parser.add_argument("version", nargs="?", type=int, help="version to roll back to")
    parser.add_argument("--model", help="model file (default: the gateway's model, see --config)")
    parser.add_argument("--config", help="TOML config file")


def run(args: argparse.Namespace) -> int:
    if args.action == "rollback" and args.version is None:
        print(
            "mailmoat model rollback: name the VERSION (see mailmoat model list)", file=sys.stderr
        )
        return 2
    config = load_config(args.config)
    try:
        return asyncio.run(_run(args, config))
    except (ModelFormatError, OSError) as exc:
        print(f"mailmoat model: {exc}", file=sys.stderr)
        return 2


async def _run(args: argparse.Namespace, config: Config) -> int:
    file_mode = bool(args.model or config.classifier.model_path)
    store: Store | None = None if file_mode else open_store(config.store.url)
    home = home_for(config, store, args.model)
    try:
        if args.action == "list":
            return await _list(home)
        return await rollback(home, args.version)
    finally:
        await home.close()
        if store is not None:
            await store.close()


async def _list(home: ModelHome) -> int:
    current = await home.load()
    print(f"current: version {current.version}, {current.n_learned} learned, in {home.where}")
    for info in await home.versions():
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(info.time))
        print(f"{info.version:>8}  {when}  {info.n_learned:>8} learned  {info.note}")
    return 0


async def rollback(home: ModelHome, version: int) -> int:
    """Make kept ``version`` current again (module doc); the exit status."""
    target = await home.load_version(version)
    if target is None:
        kept = ", ".join(str(v.version) for v in await home.versions()) or "none"
        print(f"mailmoat model: version {version} is not kept (kept: {kept})", file=sys.stderr)
        return 2
    for _attempt in range(5):
        target.version = (await home.load()).version
        try:
            saved = await home.save(target, f"rollback to {version}")
        except ModelConflictError:
            continue
        dropped = await home.ledger_drop_after(version)
        print(
            f"rolled back to version {version}: saved as version {saved} in {home.where}"
            f" ({dropped} later learned messages forgotten from the ledger)"
        )
        return 0
    print("mailmoat model: the model kept changing; try again", file=sys.stderr)
    return 1
