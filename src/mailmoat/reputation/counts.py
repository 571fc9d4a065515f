"""Decayed outcome counts per source, kept in the store.

Contract: a source's counts live in one store hash ``rep:s:<kind>:<name>``
whose fields are ``<outcome>:<hour>`` (outcome ``a`` accepted, ``t``
tagged, ``q`` quarantined, ``r`` refused; hour: the UTC hour the messages
arrived in) and whose values are message counts written with ``hincr``
(atomic, so several gateways on one Redis add up). The hash expires
``[reputation] retention`` seconds after its last write, like every key.
The day's index ``rep:i:<day>`` (field: source key, value: messages) lets
the zone export and the dashboard find the sources without scanning keys.

Reading weighs each hour's counts by ``0.5 ** (age / half_life)``, the age
counted from the hour's end (the current hour's counts are whole, so a
threshold of N messages means N messages at any minute of the hour), and
ignores hours older than ``retention``; ``read_counts`` never raises for
an absent source (all zeros) and deletes the hours past ``retention`` it
finds (a source that keeps sending keeps its hash alive). Store errors propagate (``StoreError``):
callers decide what a failure means.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from mailmoat.core.record import TransactionRecord
from mailmoat.store.base import Store

HOUR, DAY = 3600, 86_400
OUTCOMES = {"a": "accepted", "t": "tagged", "q": "quarantined", "r": "refused"}
_BY_ACTION = {"accept": "a", "add_header": "t", "quarantine": "q", "reject": "r"}
# Refusals that say nothing about the source's mail (our limits, our relay
# policy, the upstream's answer) are not counted.
NOT_EVIDENCE = frozenset({"relay_denied", "size", "upstream", "recipients", "shutdown"})


def outcome_of(record: TransactionRecord) -> str | None:
    """The outcome letter a finished transaction counts as, or None."""
    letter = _BY_ACTION.get(record.action)
    if letter == "r" and record.reason in NOT_EVIDENCE:
        return None
    return letter


def source_key(source_key_text: str) -> str:
    return f"rep:s:{source_key_text}"


def index_key(day: int) -> str:
    return f"rep:i:{day}"


@dataclass(frozen=True)
class Counts:
    accepted: float = 0.0
    tagged: float = 0.0
    quarantined: float = 0.0
    refused: float = 0.0
    # Start of the newest hour with a quarantined or refused message (0: none).
    last_bad: float = 0.0
    last_seen: float = 0.0

    @property
    def total(self) -> float:
        return self.accepted + self.tagged + self.quarantined + self.refused

    @property
    def bad(self) -> float:
        return self.quarantined + self.refused

    @property
    def bad_share(self) -> float:
        return self.bad / self.total if self.total > 0 else 0.0

    @property
    def good_share(self) -> float:
        return self.accepted / self.total if self.total > 0 else 0.0

    def as_dict(self) -> dict[str, float]:
        return {
            "accepted": round(self.accepted, 2),
            "tagged": round(self.tagged, 2),
            "quarantined": round(self.quarantined, 2),
            "refused": round(self.refused, 2),
            "total": round(self.total, 2),
            "bad_share": round(self.bad_share, 3),
            "last_bad": self.last_bad,
            "last_seen": self.last_seen,
        }


def decay(
    fields: dict[str, bytes | float], now: float, half_life: float, retention: float
) -> Counts:
    """The decayed counts of one source hash; stale and foreign fields ignored."""
    sums = dict.fromkeys(OUTCOMES, 0.0)
    last_bad = last_seen = 0.0
    for name, value in fields.items():
        letter, _, hour_text = name.partition(":")
        if letter not in sums or not hour_text.isdigit():
            continue
        start = int(hour_text) * HOUR
        age = max(0.0, now - (start + HOUR))
        if now - start > retention:
            continue
        amount = float(value) if not isinstance(value, bytes) else float(value or 0)
        sums[letter] += amount * 0.5 ** (age / half_life)
        last_seen = max(last_seen, start)
        if letter in "qr":
            last_bad = max(last_bad, start)
    return Counts(sums["a"], sums["t"], sums["q"], sums["r"], last_bad, last_seen)


def stale_fields(fields: Iterable[str], now: float, retention: float) -> list[str]:
    """Hour fields older than ``retention`` (other fields, ``lb``, are kept)."""
    return [
        name
        for name in fields
        if (hour := name.partition(":")[2]).isdigit() and now - int(hour) * HOUR > retention
    ]


async def read_counts(
    store: Store, keys: Sequence[str], now: float, half_life: float, retention: float
) -> list[Counts]:
    """The decayed counts of each source key (``ip:192.0.2.7``...), in order."""
    found = []
    for key in keys:
        fields = await store.hgetall(source_key(key))
        found.append(decay(fields, now, half_life, retention))
        # A source that keeps sending keeps its hash alive: its old hours go here.
        for name in stale_fields(fields, now, retention):
            await store.hdel(source_key(key), name)
    return found


async def indexed_sources(store: Store, now: float, retention: float) -> dict[str, float]:
    """Every source key seen within ``retention`` (newest days' index
    hashes), with its messages over that time (not decayed)."""
    seen: dict[str, float] = {}
    day = int(now // DAY * DAY)
    oldest = now - retention - DAY
    while day >= oldest:
        for key, value in (await store.hgetall(index_key(day))).items():
            if not isinstance(value, bytes):
                seen[key] = seen.get(key, 0.0) + value
        day -= DAY
    return seen
