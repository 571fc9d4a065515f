"""Source events: a top spam network or AS "went dark" or "appeared".

Contract: ``source_events(store, settings, now)`` looks at the networks and
ASes seen over the last week (the reputation index, ``counts``; the
``READ_AT_MOST`` busiest by messages), keeps the top ``TOP_SOURCES`` by
quarantined and refused messages among those with at least
``stats.source_min_spam`` of them, and reports for each one a
``SourceEvent``: "went dark" when its last bad message (the precise ``lb``
field the recorder keeps) is ``stats.source_silence`` seconds old or more
(the McColo signature: a big source stops at once), and "appeared" when its
first message came within the last day. Events are ``StepEvent``s (change
-1 or +1) so the overview, ``/api/events`` and ``mailmoat stats`` show them
with the step changes. Counts here are raw (not decayed). Store errors
propagate, as for the other statistics readers.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from mailmoat.config import StatsConfig
from mailmoat.reputation.counts import HOUR, indexed_sources, source_key
from mailmoat.stats.steps import StepEvent
from mailmoat.store.base import Store

TOP_SOURCES = 10
READ_AT_MOST = 200
LOOKBACK = 7 * 86_400
APPEARED_WITHIN = 86_400


@dataclass(frozen=True)
class SourceEvent(StepEvent):
    kind: str = "went dark"

    @property
    def text(self) -> str:
        return f"{self.series} {self.kind} ({self.baseline:.0f} spam messages)"

    def as_dict(self) -> dict[str, object]:
        return {**super().as_dict(), "kind": self.kind, "text": self.text}


def _label(key: str) -> str:
    kind, _, name = key.partition(":")
    return f"network {name}" if kind == "net" else name


async def source_events(store: Store, settings: StatsConfig, now: float) -> list[SourceEvent]:
    seen = await indexed_sources(store, now, LOOKBACK)
    # Only the busiest networks and ASes are read (a botnet's thousands of
    # small networks cost no store read per page view).
    busiest = sorted(
        (key for key in seen if key.startswith(("net:", "as:"))), key=lambda k: -seen[k]
    )[:READ_AT_MOST]
    candidates = []
    for key in busiest:
        fields = await store.hgetall(source_key(key))
        bad, first, last_bad = 0.0, float("inf"), 0.0
        for name, value in fields.items():
            letter, _, hour = name.partition(":")
            if not hour.isdigit() or isinstance(value, bytes):
                continue
            start = int(hour) * HOUR
            if now - start > LOOKBACK:
                continue
            first = min(first, start)
            if letter in ("q", "r"):
                bad += value
                last_bad = max(last_bad, start)
        precise = fields.get("lb")
        if isinstance(precise, bytes):
            with contextlib.suppress(ValueError):
                last_bad = max(last_bad, float(precise))
        if bad >= settings.source_min_spam:
            candidates.append((bad, key, first, last_bad))
    candidates.sort(reverse=True)
    events: list[SourceEvent] = []
    for bad, key, first, last_bad in candidates[:TOP_SOURCES]:
        label = _label(key)
        if now - last_bad >= settings.source_silence:
            events.append(_event(label, last_bad, 0.0, bad, -1.0, "went dark"))
        if now - first <= APPEARED_WITHIN:
            events.append(_event(label, first, bad, bad, 1.0, "appeared"))
    return events


def _event(
    label: str, when: float, value: float, bad: float, change: float, kind: str
) -> SourceEvent:
    return SourceEvent(
        series=label,
        time=when,
        value=value,
        baseline=bad,
        change=change,
        baseline_label="spam sent",
        step=0,
        kind=kind,
    )
