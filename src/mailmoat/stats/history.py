"""Transaction history: bounded, searchable, on any Store backend.

Contract: the recorder hands batches of ``TransactionRecord.as_dict()``
entries to ``write_batch``, which stores each batch as one zlib-compressed
JSON-lines item of the capped list ``hist:{node}:{hour_start}`` (one list per
node and hour, TTL ``stats.history_days``). The bound is therefore
``history_days * 24 * history_max_per_hour`` records per node (the recorder
drops and counts records over the hourly cap). ``search`` reads the hours of
a window newest first, decompresses and filters in Python, and stops at
``limit`` matches; it works the same on SQLite and on a Redis shared by a
cluster. Unreadable items are skipped, never fatal. ``search_page`` also
stops at a time budget and says where to go on (``Page.next_end``); callers
bound the window (the dashboard: to ``history_days``) and keep the walk off
a busy event loop (``mailmoat.web.history_reader``).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mailmoat.stats.counters import HOUR, floor, resolve_nodes
from mailmoat.store.base import Store

log = logging.getLogger("mailmoat.stats")

# One list item per flush: this many items per hour covers a 1 s flush interval.
_MAX_BATCHES_PER_HOUR = 4000
TEXT_FIELDS = (
    "queue_id",
    "client_ip",
    "client_rdns",
    "helo",
    "mail_from",
    "rcpts",
    "subject",
    "message_id",
    "action",
    "reason",
    "reply",
    "node",
)


def history_key(node: str, hour: int) -> str:
    return f"hist:{node}:{hour}"


def encode_batch(entries: list[dict[str, Any]]) -> bytes:
    text = json.dumps(entries, separators=(",", ":"), ensure_ascii=False, default=str)
    return zlib.compress(text.encode("utf-8", "surrogateescape"), 1)


def decode_batch(blob: bytes) -> list[dict[str, Any]]:
    try:
        entries = json.loads(zlib.decompress(blob).decode("utf-8", "surrogateescape"))
    except (zlib.error, UnicodeDecodeError, ValueError):
        entries = None
    if not isinstance(entries, list):
        log.warning("stats: skipping an unreadable history batch")
        return []
    return [e for e in entries if isinstance(e, dict)]


async def write_batch(
    store: Store, node: str, hour: int, entries: list[dict[str, Any]], ttl: float
) -> None:
    await store.push(history_key(node, hour), encode_batch(entries), _MAX_BATCHES_PER_HOUR, ttl)


@dataclass(frozen=True)
class Filters:
    """What to look for. Text filters are case-insensitive substrings;
    ``client_ip`` may be an address, a prefix ("192.0.2.") or a CIDR."""

    q: str = ""
    queue_id: str = ""
    client_ip: str = ""
    client_rdns: str = ""
    helo: str = ""
    mail_from: str = ""
    rcpt: str = ""
    subject: str = ""
    action: str = ""
    reason: str = ""
    symbol: str = ""
    min_score: float | None = None
    max_score: float | None = None

    @classmethod
    def from_query(cls, params: Mapping[str, str]) -> Filters:
        def number(name: str) -> float | None:
            text = params.get(name, "").strip()
            try:
                return float(text) if text else None
            except ValueError:
                return None

        names = [f for f in cls.__dataclass_fields__ if f not in ("min_score", "max_score")]
        values = {name: params.get(name, "").strip() for name in names}
        return cls(**values, min_score=number("min_score"), max_score=number("max_score"))

    def matches(self, entry: Mapping[str, Any]) -> bool:
        def has(field: str, needle: str) -> bool:
            value = entry.get(field, "")
            text = " ".join(value) if isinstance(value, list) else str(value)
            return needle.lower() in text.lower()

        for field in ("queue_id", "client_rdns", "helo", "mail_from", "subject"):
            needle = getattr(self, field)
            if needle and not has(field, needle):
                return False
        if self.rcpt and not has("rcpts", self.rcpt):
            return False
        if self.action and entry.get("action") != self.action:
            return False
        if self.reason and entry.get("reason") != self.reason:
            return False
        if self.client_ip and not _ip_matches(str(entry.get("client_ip", "")), self.client_ip):
            return False
        symbols = entry.get("symbols") or {}
        if self.symbol and not any(self.symbol.upper() in name for name in symbols):
            return False
        score = float(entry.get("score") or 0.0)
        if self.min_score is not None and score < self.min_score:
            return False
        if self.max_score is not None and score > self.max_score:
            return False
        return not self.q or self._free_text(entry, symbols)

    def _free_text(self, entry: Mapping[str, Any], symbols: Mapping[str, Any]) -> bool:
        needle = self.q.lower()
        for field in TEXT_FIELDS:
            value = entry.get(field, "")
            text = " ".join(value) if isinstance(value, list) else str(value)
            if needle in text.lower():
                return True
        return any(needle in name.lower() for name in symbols)


def _ip_matches(address: str, pattern: str) -> bool:
    if "/" in pattern:
        try:
            return ipaddress.ip_address(address) in ipaddress.ip_network(pattern, strict=False)
        except ValueError:
            return False
    return address == pattern or (pattern.endswith((".", ":")) and address.startswith(pattern))


@dataclass
class Page:
    """One page of search results, newest first. ``more``: the search stopped
    early (``limit`` matches or the time budget) and older matches may exist;
    search again with ``end = next_end`` for them."""

    entries: list[dict[str, Any]]
    more: bool
    next_end: float


def _entry_time(entry: Mapping[str, Any]) -> float:
    try:
        return float(entry.get("time", 0))
    except (TypeError, ValueError):
        return 0.0


async def read_hour(
    store: Store, nodes: list[str], hour: int, start: float, end: float
) -> list[dict[str, Any]]:
    """The entries of one hour with ``start <= time < end``, newest first."""
    chunk: list[dict[str, Any]] = []
    for node in nodes:
        for blob in await store.range(history_key(node, hour), 0, -1):
            chunk.extend(decode_batch(blob))
    chunk = [e for e in chunk if start <= _entry_time(e) < end]
    chunk.sort(key=_entry_time, reverse=True)
    return chunk


async def search_page(
    store: Store,
    filters: Filters,
    *,
    start: float,
    end: float,
    node: str | None = None,
    limit: int = 200,
    budget: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Page:
    """At most ``limit`` entries matching ``filters`` with ``start <= time <
    end``, reading one hour at a time from the newest; past ``budget``
    seconds it stops between hours and returns what it has (``more``)."""
    nodes = await resolve_nodes(store, node)
    deadline = None if budget is None else clock() + budget
    matches: list[dict[str, Any]] = []
    hour = floor(end, HOUR)
    while hour >= floor(start, HOUR):
        if deadline is not None and clock() > deadline:
            return Page(matches, True, min(end, hour + HOUR))
        for entry in await read_hour(store, nodes, hour, max(start, hour), min(end, hour + HOUR)):
            if filters.matches(entry):
                matches.append(entry)
                if len(matches) >= limit:
                    return Page(matches, True, _entry_time(entry))
        hour -= HOUR
    return Page(matches, False, start)


async def search(
    store: Store,
    filters: Filters,
    *,
    start: float,
    end: float,
    node: str | None = None,
    limit: int = 200,
) -> list[dict[str, Any]]:
    """Newest first, at most ``limit`` entries matching ``filters``."""
    page = await search_page(store, filters, start=start, end=end, node=node, limit=limit)
    return page.entries


async def find(
    store: Store, queue_id: str, *, start: float, end: float, node: str | None = None
) -> list[dict[str, Any]]:
    """Every record of one queue id (a transaction may log several refusals)."""
    hits = await search(
        store, Filters(queue_id=queue_id), start=start, end=end, node=node, limit=50
    )
    return [h for h in hits if h.get("queue_id") == queue_id]
