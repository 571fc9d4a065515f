"""Time series for the graphs, top lists, and the summary the CLI and web share.

Contract: ``read_series(store, view, now)`` returns the counters of a day /
week / month / year view as equal steps (5 minutes, 1 hour, 6 hours, 1 day)
built from the minute, hour and day buckets; ``read_top`` sums the per-day
top hashes (``stats:top:{kind}:{node}:{day}``, kinds ``ip``, ``net24``,
``sender_domain``, ``rcpt``); ``summary`` puts totals, top lists and step
events for a ``since`` window into one JSON-ready dict. Missing data reads as
zero; nothing here writes.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from mailmoat.config import StatsConfig
from mailmoat.stats.counters import (
    ACTIONS,
    DAY,
    HOUR,
    MINUTE,
    RESOLUTIONS,
    floor,
    is_spam,
    read_bucket,
    read_totals,
    resolve_nodes,
)
from mailmoat.stats.steps import StepEvent, detect_steps
from mailmoat.store.base import Store

TOP_KINDS = ("ip", "net24", "sender_domain", "rcpt")


@dataclass(frozen=True)
class View:
    name: str
    span: int
    step: int
    resolution: str


VIEWS = {
    "day": View("day", DAY, 5 * MINUTE, "m"),
    "week": View("week", 7 * DAY, HOUR, "h"),
    "month": View("month", 31 * DAY, 6 * HOUR, "h"),
    "year": View("year", 365 * DAY, DAY, "d"),
}


@dataclass
class Series:
    view: View
    start: int
    nodes: list[str]
    points: list[Counter[str]]

    @property
    def times(self) -> list[int]:
        return [self.start + i * self.view.step for i in range(len(self.points))]

    def values(self, name: str) -> list[float]:
        return [float(p.get(name, 0)) for p in self.points]

    def spam(self) -> list[float]:
        return [is_spam(p) for p in self.points]

    def rejects(self) -> list[float]:
        return [
            float(sum(v for k, v in p.items() if k[:4] in ("rej:", "tmp:"))) for p in self.points
        ]

    def messages(self) -> list[float]:
        return [float(sum(p.get(f"msg:{a}", 0) for a in ACTIONS)) for p in self.points]

    def reasons(self) -> list[str]:
        """Refusal reasons present, biggest first (``rej:x`` / ``tmp:x`` merged)."""
        merged: Counter[str] = Counter()
        for point in self.points:
            for key, value in point.items():
                if key[:4] in ("rej:", "tmp:"):
                    merged[key[4:]] += value
        return [name for name, _ in merged.most_common()]

    def reason_values(self, reason: str) -> list[float]:
        return [float(p.get(f"rej:{reason}", 0) + p.get(f"tmp:{reason}", 0)) for p in self.points]

    def as_dict(self) -> dict[str, object]:
        names = sorted({k for p in self.points for k in p})
        return {
            "view": self.view.name,
            "start": self.start,
            "step": self.view.step,
            "nodes": self.nodes,
            "times": self.times,
            "series": {n: self.values(n) for n in names},
            "spam": self.spam(),
        }


async def read_series(store: Store, view: View, now: float, node: str | None = None) -> Series:
    nodes = await resolve_nodes(store, node)
    end = floor(now, view.step) + view.step
    start = end - view.span
    size = RESOLUTIONS[view.resolution]
    points: list[Counter[str]] = [Counter() for _ in range(view.span // view.step)]
    bucket = floor(start, size)
    while bucket < end:
        index = (bucket - start) // view.step
        if 0 <= index < len(points):
            points[index].update(await read_bucket(store, view.resolution, nodes, bucket))
        bucket += size
    return Series(view, start, nodes, points)


def top_key(kind: str, node: str, day: int) -> str:
    return f"stats:top:{kind}:{node}:{day}"


async def read_top(
    store: Store, kind: str, start: float, end: float, node: str | None = None, limit: int = 10
) -> list[tuple[str, int]]:
    nodes = await resolve_nodes(store, node)
    counts: Counter[str] = Counter()
    day = floor(start, DAY)
    while day < end:
        for name in nodes:
            for value, count in (await store.hgetall(top_key(kind, name, day))).items():
                if isinstance(count, float):
                    counts[value] += int(count)
        day += DAY
    return counts.most_common(limit)


async def read_events(
    store: Store, settings: StatsConfig, now: float, node: str | None = None
) -> list[StepEvent]:
    """Step changes of spam and refusals: daily (7-day median) and hourly
    (median of the same hour on the 7 days before, held for 3 hours); both
    judged only from ``stats.step_min_baseline`` messages per period."""
    events: list[StepEvent] = []
    daily = await read_series(store, View("days", 60 * DAY, DAY, "d"), now, node)
    hourly = await read_series(store, View("hours", 14 * DAY, HOUR, "h"), now, node)
    for series, window, period, sustain, unit in (
        (daily, 7, 1, 1, "7-day median"),
        (hourly, 7, 24, 3, "median of this hour on the 7 days before"),
    ):
        # The running period is incomplete; judging it would flag every morning.
        times = series.times[:-1]
        for name, values in (("spam", series.spam()), ("rejects", series.rejects())):
            events += detect_steps(
                name,
                times,
                values[:-1],
                window=window,
                period=period,
                sustain=sustain,
                threshold=settings.step_threshold,
                min_baseline=settings.step_min_baseline,
                baseline_label=unit,
                step=series.view.step,
            )
    from mailmoat.reputation.events import source_events

    events += await source_events(store, settings, now)
    return sorted(events, key=lambda e: e.time, reverse=True)


_SINCE_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdwy]?)$")
_UNITS = {"s": 1, "m": MINUTE, "h": HOUR, "d": DAY, "w": 7 * DAY, "y": 365 * DAY, "": HOUR}


def parse_since(text: str) -> float:
    """``90m``, ``24h``, ``7d``, ``2w`` -> seconds (a bare number is hours)."""
    match = _SINCE_RE.match(text.strip().lower())
    if not match:
        raise ValueError(f"bad duration {text!r}: use e.g. 30m, 24h, 7d, 2w")
    return float(match.group(1)) * _UNITS[match.group(2)]


async def summary(
    store: Store,
    settings: StatsConfig,
    since: float,
    now: float,
    node: str | None = None,
) -> dict[str, object]:
    """Totals, top lists and events for the last ``since`` seconds."""
    start = floor(now - since, MINUTE)
    totals = await read_totals(
        store, start, now + 1, now=now, node=node, minute_hours=settings.minute_retention_hours
    )
    result = totals.as_dict()
    result["since"] = since
    result["top"] = {
        kind: [{"value": v, "count": c} for v, c in await read_top(store, kind, start, now, node)]
        for kind in TOP_KINDS
    }
    result["events"] = [e.as_dict() for e in await read_events(store, settings, now, node)]
    return result
