"""Counter vocabulary, bucket keys and reading counters back from the store.

Contract: every outcome is a field of a hash per node and time bucket:
``stats:{m|h|d}:{node}:{bucket_start}`` (one minute, one hour, one UTC day)
plus an all-time hash ``stats:t:{node}`` (for Prometheus counters). Fields:

- ``connections``
- ``msg:<action>`` for each transaction outcome (accept, add_header,
  quarantine, soft_reject, reject, discard): they add up to all transactions
- ``rej:<reason>`` / ``tmp:<reason>`` refusals (5xx / 4xx) by reason
- ``released`` quarantined messages released from the dashboard
- ``autolearn:spam`` / ``autolearn:ham`` messages autolearned
  (``mailmoat.autolearn``)

Counters are written through ``Store.hincr`` with a TTL per resolution, so
the SQLite and the Redis backends both work and several gateways can share
one Redis: ``stats:nodes`` lists the nodes seen, and readers sum over the
nodes asked for (``None``: all). Reading never raises for missing buckets.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from mailmoat.core.record import TransactionRecord
from mailmoat.store.base import Store

MINUTE, HOUR, DAY = 60, 3600, 86_400
RESOLUTIONS = {"m": MINUTE, "h": HOUR, "d": DAY}
ACTIONS = ("accept", "add_header", "quarantine", "soft_reject", "reject", "discard")
ACTION_LABELS = {
    "accept": "accepted",
    "add_header": "tagged",
    "quarantine": "quarantined",
    "soft_reject": "tempfailed",
    "reject": "rejected",
    "discard": "discarded",
}
NODES_KEY = "stats:nodes"
_REASON_RE = re.compile(r"[^a-z0-9_]+")


def bucket_key(resolution: str, node: str, start: int) -> str:
    return f"stats:{resolution}:{node}:{start}"


def total_key(node: str) -> str:
    return f"stats:t:{node}"


def floor(ts: float, size: int) -> int:
    return int(ts // size * size)


def clean_reason(reason: str) -> str:
    return _REASON_RE.sub("_", reason.lower()).strip("_")[:40] or "unknown"


def fields_for(record: TransactionRecord) -> list[str]:
    """The counter fields one transaction record increments."""
    action = record.action if record.action in ACTIONS else "reject"
    fields = [f"msg:{action}"]
    if action == "reject":
        fields.append(f"rej:{clean_reason(record.reason)}")
    elif action == "soft_reject":
        fields.append(f"tmp:{clean_reason(record.reason)}")
    return fields


def is_spam(counts: Counter[str] | dict[str, float]) -> float:
    """Spam = tagged + quarantined + rejected on score/content."""
    return float(
        counts.get("msg:add_header", 0)
        + counts.get("msg:quarantine", 0)
        + sum(v for k, v in counts.items() if k.startswith("rej:") and k[4:] in _SPAM_REASONS)
    )


# Refusals that judge the content (as opposed to protocol, envelope, policy).
_SPAM_REASONS = frozenset(
    {"score", "classifier", "rules", "attachment", "bulk", "urlbl", "spf", "dmarc", "dkim"}
)


@dataclass
class Totals:
    """Summed counters over a time range, with derived figures."""

    start: float
    end: float
    nodes: list[str]
    counts: Counter[str] = field(default_factory=Counter)

    @property
    def messages(self) -> int:
        return int(sum(self.counts.get(f"msg:{a}", 0) for a in ACTIONS))

    def action(self, action: str) -> int:
        return int(self.counts.get(f"msg:{action}", 0))

    def by_prefix(self, prefix: str) -> dict[str, int]:
        items = ((k[len(prefix) :], int(v)) for k, v in self.counts.items() if k.startswith(prefix))
        return dict(sorted(items, key=lambda kv: (-kv[1], kv[0])))

    @property
    def spam(self) -> int:
        return int(is_spam(self.counts))

    @property
    def spam_share(self) -> float:
        return self.spam / self.messages if self.messages else 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "start": self.start,
            "end": self.end,
            "nodes": self.nodes,
            "connections": int(self.counts.get("connections", 0)),
            "messages": self.messages,
            "actions": {a: self.action(a) for a in ACTIONS},
            "delivered": self.action("accept") + self.action("add_header"),
            "rejects": self.by_prefix("rej:"),
            "tempfails": self.by_prefix("tmp:"),
            "released": int(self.counts.get("released", 0)),
            "spam": self.spam,
            "spam_share": round(self.spam_share, 4),
        }


async def known_nodes(store: Store) -> list[str]:
    return sorted((await store.hgetall(NODES_KEY)).keys())


async def resolve_nodes(store: Store, node: str | None) -> list[str]:
    return [node] if node else await known_nodes(store)


async def read_bucket(
    store: Store, resolution: str, nodes: Iterable[str], start: int
) -> Counter[str]:
    counts: Counter[str] = Counter()
    for node in nodes:
        for name, value in (await store.hgetall(bucket_key(resolution, node, start))).items():
            if isinstance(value, float):
                counts[name] += int(value)
    return counts


def pick_resolution(start: float, end: float, now: float, minute_hours: int) -> str:
    """The finest resolution still held for the whole range."""
    if start >= now - minute_hours * HOUR + MINUTE and end - start <= 3 * DAY:
        return "m"
    if end - start <= 62 * DAY:
        return "h"
    return "d"


async def read_totals(
    store: Store,
    start: float,
    end: float,
    *,
    now: float,
    node: str | None = None,
    minute_hours: int = 48,
) -> Totals:
    """Counters summed over the buckets that start in ``[start, end)``."""
    nodes = await resolve_nodes(store, node)
    resolution = pick_resolution(start, end, now, minute_hours)
    size = RESOLUTIONS[resolution]
    totals = Totals(start, end, nodes)
    bucket = floor(start, size)
    while bucket < end:
        totals.counts.update(await read_bucket(store, resolution, nodes, bucket))
        bucket += size
    return totals


async def read_all_time(store: Store, node: str) -> Counter[str]:
    counts: Counter[str] = Counter()
    for name, value in (await store.hgetall(total_key(node))).items():
        if isinstance(value, float):
            counts[name] = int(value)
    return counts
