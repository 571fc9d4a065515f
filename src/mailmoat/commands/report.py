"""``mailmoat report arf QUEUE_ID... [--to ADDRESS] [--dry-run DIR]``: abuse reports.

Builds one RFC 5965 report per quarantined or refused message
(``mailmoat.reputation.report``) and either writes them as ``.eml`` files
into DIR (``--dry-run``, always allowed) or sends them through
``reports.smarthost`` to the contact table's address (``reports.contacts``)
or ``--to``, batched per contact and rate-limited
(``mailmoat.reputation.deliver``). Sending needs ``[reports] enabled =
true``. Prints one line per queue id; exits 1 when any was not reported.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

from mailmoat.config import Config, ConfigError, load_config
from mailmoat.config.values import mailbox
from mailmoat.reputation.deliver import address_reports, send_reports
from mailmoat.reputation.recorder import sources_from_config
from mailmoat.reputation.report import NotReportable, Reportable, build_report, find_reportable
from mailmoat.reputation.sources import TableError
from mailmoat.reputation.tables import ContactTable
from mailmoat.store import open_store


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="kind", metavar="KIND")
    sub.required = True
    arf = sub.add_parser("arf", help="RFC 5965 abuse reports of quarantined or refused messages")
    arf.add_argument("queue_ids", nargs="+", metavar="QUEUE_ID")
    arf.add_argument("--config", help="TOML config file (default: embedded defaults)")
    arf.add_argument("--to", default="", help="send every report to this address")
    arf.add_argument("--dry-run", metavar="DIR", help="write the reports as .eml files, send none")


async def gather(config: Config, queue_ids: list[str]) -> tuple[list[Reportable], list[str]]:
    store = open_store(config.store.url)
    found: list[Reportable] = []
    problems: list[str] = []
    try:
        for queue_id in queue_ids:
            try:
                found.append(await find_reportable(config, store, queue_id))
            except NotReportable as exc:
                problems.append(str(exc))
    finally:
        await store.close()
    return found, problems


def write_atomically(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".eml")
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    settings = config.reports
    if args.to and mailbox(args.to) is not None:
        print(f"mailmoat report: --to {args.to!r} is not a mail address", file=sys.stderr)
        return 2
    if not args.dry_run and not settings.enabled:
        print(
            "mailmoat report: sending is off ([reports] enabled = false); "
            "--dry-run DIR writes the reports instead",
            file=sys.stderr,
        )
        return 2
    if not args.dry_run and not settings.smarthost:
        raise ConfigError("reports.smarthost: needed to send reports")
    try:
        contacts = ContactTable.load(settings.contacts) if settings.contacts else None
        sources = sources_from_config(config)
    except TableError as exc:
        raise ConfigError(str(exc)) from exc
    if contacts is None and not args.to:
        raise ConfigError("reports.contacts: no contact table; give one or --to ADDRESS")
    items, problems = asyncio.run(gather(config, list(args.queue_ids)))
    addressed, skipped = address_reports(items, contacts, args.to, sources)
    problems += skipped
    hostname = config.smtp.hostname
    built = [
        (
            a.item.queue_id,
            a.contact,
            build_report(a.item, sender=settings.sender, to=a.contact, hostname=hostname),
        )
        for a in addressed
    ]
    lines: list[str]
    if args.dry_run:
        directory = Path(args.dry_run)
        directory.mkdir(parents=True, exist_ok=True)
        lines = []
        for queue_id, contact, data in built:
            path = directory / f"arf-{queue_id}.eml"
            write_atomically(path, data)
            lines.append(f"{queue_id}: written to {path} (for {contact})")
    else:
        allowed = (contacts.addresses if contacts else frozenset()) | (
            {args.to} if args.to else set()
        )
        lines = send_reports(
            built,
            smarthost=settings.smarthost,
            sender=settings.sender,
            allowed=frozenset(allowed),
            batch_size=settings.batch_size,
            max_per_minute=settings.max_per_minute,
        )
    for line in lines:
        print(line)
    for problem in problems:
        print(f"not reported: {problem}", file=sys.stderr)
    failed = bool(problems) or any(": not sent" in line for line in lines)
    return 1 if failed else 0
