"""Transaction history: bounded, searchable, on any Store backend.

Contract: the recorder hands batches of ``TransactionRecord.as_dict()``
entries to ``write_batch``, which stores each batch as one zlib-compressed
JSON-lines item of the capped list ``hist:{node}:{hour_start}`` (one list per
node and hour, TTL ``stats.history_days``). The bound is therefore
``history_days * 24 * history_max_per_hour`` records per node (the recorder
drops and counts records over the hourly cap). ``search`` reads the hours of
a window newest first, decompresses and filters in Python, and stops at
``limit`` matches; it works the same on SQLite and on a Redis shared by a
cluster. Unreadable items are skipped, never fatal.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import zlib
from collections.abc import Iterator, Mapping
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


async def iter_entries(
    store: Store, nodes: list[str], start: float, end: float
) -> Iterator[dict[str, Any]]:
    """All entries with ``start <= time < end``, newest hour first (within an
    hour, newest first per node)."""
    found: list[dict[str, Any]] = []
    hour = floor(end, HOUR)
    while hour >= floor(start, HOUR):
        chunk: list[dict[str, Any]] = []
        for node in nodes:
            for blob in await store.range(history_key(node, hour), 0, -1):
                chunk.extend(decode_batch(blob))
        chunk = [e for e in chunk if start <= float(e.get("time", 0)) < end]
        chunk.sort(key=lambda e: float(e.get("time", 0)), reverse=True)
        found.extend(chunk)
        hour -= HOUR
    return iter(found)


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
    nodes = await resolve_nodes(store, node)
    matches: list[dict[str, Any]] = []
    hour = floor(end, HOUR)
    while hour >= floor(start, HOUR) and len(matches) < limit:
        for entry in await iter_entries(store, nodes, max(start, hour), min(end, hour + HOUR)):
            if filters.matches(entry):
                matches.append(entry)
                if len(matches) >= limit:
                    break
        hour -= HOUR
    return matches


async def find(
    store: Store, queue_id: str, *, start: float, end: float, node: str | None = None
) -> list[dict[str, Any]]:
    """Every record of one queue id (a transaction may log several refusals)."""
    hits = await search(
        store, Filters(queue_id=queue_id), start=start, end=end, node=node, limit=50
    )
    return [h for h in hits if h.get("queue_id") == queue_id]
