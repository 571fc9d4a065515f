"""``mailmoat zone export --format rbldnsd|bind --output FILE``: our own DNSBL.

Writes the worst sources above the ``[zone]`` thresholds
(``mailmoat.reputation.zone``) as an rbldnsd ``combined`` dataset or a BIND
zone file, atomically (temporary file and rename); run it from cron and
point rbldnsd or the DNS server at FILE. Prints how many entries it wrote.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from mailmoat.config import Config, load_config
from mailmoat.reputation.zone import (
    Listing,
    listings,
    render_bind,
    render_rbldnsd,
    write_atomically,
)
from mailmoat.store import open_store


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    export = sub.add_parser("export", help="write the zone of the worst sources")
    export.add_argument("--config", help="TOML config file (default: embedded defaults)")
    export.add_argument("--format", choices=("rbldnsd", "bind"), default="rbldnsd")
    export.add_argument("--output", required=True, help="file to write (replaced atomically)")


async def collect(config: Config, now: float) -> list[Listing]:
    store = open_store(config.store.url)
    try:
        return await listings(config, store, now)
    finally:
        await store.close()


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    now = time.time()
    found = asyncio.run(collect(config, now))
    render = render_rbldnsd if args.format == "rbldnsd" else render_bind
    try:
        write_atomically(args.output, render(config, found, now))
    except OSError as exc:
        print(f"mailmoat zone: cannot write {args.output}: {exc}", file=sys.stderr)
        return 1
    print(f"{args.output}: {len(found)} entries ({args.format})")
    return 0
