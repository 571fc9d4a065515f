"""``mailmoat stats [--since 24h] [--json] [--node NAME]``: the numbers, in a terminal.

Reads the counters the gateway wrote to the configured store (the same
``mailmoat.stats.summary`` the dashboard's ``/api/summary`` serves) and prints
a summary, or the JSON object with ``--json``. Counters reach the store every
``stats.flush_interval`` seconds, so the last few seconds may be missing while
a gateway runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

from mailmoat.config import load_config
from mailmoat.stats.counters import ACTION_LABELS
from mailmoat.stats.series import parse_since, summary
from mailmoat.store import open_store


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="TOML config file (default: embedded defaults)")
    parser.add_argument("--since", default="24h", help="window: 30m, 24h, 7d... (default 24h)")
    parser.add_argument("--node", default="", help="one node only (default: all nodes)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--events",
        action="store_true",
        help="only the events: step changes, top spam sources that went dark or appeared",
    )


async def collect(config_path: str | None, since: float, node: str) -> dict[str, Any]:
    config = load_config(config_path)
    store = open_store(config.store.url)
    try:
        return await summary(store, config.stats, since, time.time(), node or None)
    finally:
        await store.close()


def format_summary(data: dict[str, Any], since_text: str) -> str:
    start = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(float(data["start"])))
    nodes = ", ".join(data["nodes"]) or "no node has written statistics yet"
    lines = [f"mailmoat statistics, last {since_text} (since {start}); nodes: {nodes}", ""]

    def row(label: str, value: object, indent: int = 2) -> None:
        lines.append(f"{' ' * indent}{label:<{28 - indent}}{value:>10}")

    row("connections", data["connections"])
    row("messages", data["messages"])
    for action, count in data["actions"].items():
        row(ACTION_LABELS[action], count, 4)
    row("delivered (incl. tagged)", data["delivered"])
    row("spam", data["spam"])
    row("spam share", f"{100 * data['spam_share']:.1f}%")
    if data["released"]:
        row("released from quarantine", data["released"])
    for title, key in (("rejected by reason", "rejects"), ("tempfailed by reason", "tempfails")):
        if data[key]:
            lines += ["", f"  {title}:"]
            for reason, count in data[key].items():
                row(reason, count, 4)
    for kind, title in (
        ("ip", "top client addresses"),
        ("net24", "top networks"),
        ("sender_domain", "top sender domains"),
        ("rcpt", "top recipients"),
    ):
        top = data["top"].get(kind) or []
        if top:
            lines += ["", f"  {title}:"]
            for item in top[:5]:
                row(str(item["value"])[:40], item["count"], 4)
    if data["events"]:
        lines += ["", "  step changes:"]
        lines += format_events(data["events"][:10])
    return "\n".join(lines)


def format_events(events: list[dict[str, Any]]) -> list[str]:
    lines = []
    for event in events:
        when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(event["time"]))
        lines.append(f"    {when}  {event['text']}")
    return lines


def run(args: argparse.Namespace) -> int:
    try:
        since = parse_since(args.since)
    except ValueError as exc:
        print(f"mailmoat stats: {exc}", file=sys.stderr)
        return 2
    data = asyncio.run(collect(args.config, since, args.node))
    if args.events:
        if args.json:
            print(json.dumps(data["events"], sort_keys=True))
        else:
            print("\n".join(format_events(data["events"]) or ["    no events"]))
        return 0
    if args.json:
        print(json.dumps(data, sort_keys=True))
    else:
        print(format_summary(data, args.since))
    return 0
