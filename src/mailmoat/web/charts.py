"""Small server-side SVG charts: stacked bars over time, a percentage line.

Contract: ``stacked_bars`` and ``share_line`` return a ``Chart`` whose
``svg`` is a self-contained, escaped SVG string (no script, no external
resource) with a ``<title>`` tooltip per bar segment, gridlines, time labels
and dashed vertical marks for events; ``legend`` lists (label, color) for
the page. ``data-total`` on the root element is the sum of all values, so a
test can tell what a graph shows. Times are UTC epoch seconds.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html import escape

WIDTH, LEFT, RIGHT, TOP, BOTTOM = 960, 52, 14, 14, 26
_TIME_FORMATS = {"day": "%H:%M", "week": "%a %d", "month": "%d %b", "year": "%b %Y"}


@dataclass(frozen=True)
class Layer:
    label: str
    color: str
    values: Sequence[float]


@dataclass(frozen=True)
class Mark:
    time: float
    label: str
    up: bool


@dataclass
class Chart:
    svg: str
    legend: list[tuple[str, str]] = field(default_factory=list)
    total: float = 0.0


def nice_max(value: float) -> float:
    """The smallest round maximum at or above ``value`` whose quarters are
    round too (gridlines at 0, 1/4 ... 1); at least 4 for counts."""
    quarter = max(value / 4, 1.0)
    magnitude = float(10 ** math.floor(math.log10(quarter)))
    for factor in (1, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if quarter <= factor * magnitude:
            return 4 * factor * magnitude
    return 40 * magnitude


def _fmt(value: float) -> str:
    if value >= 10_000:
        return f"{value / 1000:.0f}k"
    if value >= 1000:
        return f"{value / 1000:.1f}k"
    return f"{value:.0f}" if value == int(value) else f"{value:.1f}"


def _frame(height: int, ymax: float, unit: str, label: str) -> list[str]:
    plot_h = height - TOP - BOTTOM
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
        f'class="chart" role="img" aria-label="{escape(label)}" '
        f'preserveAspectRatio="none">'
    ]
    for i in range(5):
        y = TOP + plot_h - plot_h * i / 4
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
        )
        parts.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" class="axis" text-anchor="end">'
            f"{_fmt(ymax * i / 4)}{unit}</text>"
        )
    return parts


def _time_labels(times: Sequence[int], step: int, view: str, height: int) -> list[str]:
    n = len(times)
    if not n:
        return []
    plot_w = WIDTH - LEFT - RIGHT
    fmt = _TIME_FORMATS.get(view, "%d %b")
    parts = []
    for i in _tick_indices(times, view):
        x = LEFT + plot_w * i / n
        if x > WIDTH - RIGHT - 44:  # the label would be cut off
            continue
        text = time.strftime(fmt, time.gmtime(times[i]))
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{height - BOTTOM}" class="tick"/>'
        )
        parts.append(f'<text x="{x + 3:.1f}" y="{height - 8}" class="axis">{escape(text)}</text>')
    return parts


def _tick_indices(times: Sequence[int], view: str) -> list[int]:
    """Ticks on calendar boundaries: every 3 hours, midnights, every 4th
    midnight, first of the month; evenly spaced for anything else."""
    rules: dict[str, Callable[[int], bool]] = {
        "day": lambda t: t % (3 * 3600) == 0,
        "week": lambda t: t % 86_400 == 0,
        "month": lambda t: t % 86_400 == 0 and (t // 86_400) % 4 == 0,
        "year": lambda t: time.gmtime(t).tm_mday == 1,
    }
    rule = rules.get(view)
    found = [i for i, t in enumerate(times) if rule(t)] if rule else []
    return found or list(range(0, len(times), max(1, len(times) // 8)))


def _marks(marks: Sequence[Mark], times: Sequence[int], step: int, height: int) -> list[str]:
    if not times:
        return []
    plot_w = WIDTH - LEFT - RIGHT
    start, end = times[0], times[-1] + step
    parts = []
    for mark in marks:
        if not start <= mark.time < end:
            continue
        x = LEFT + plot_w * (mark.time - start) / (end - start)
        kind = "mark-up" if mark.up else "mark-down"
        parts.append(
            f'<g class="mark {kind}"><title>{escape(mark.label)}</title>'
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{height - BOTTOM}"/>'
            f'<path d="M{x - 5:.1f},{TOP} L{x + 5:.1f},{TOP} L{x:.1f},{TOP + 8} Z"/></g>'
        )
    return parts


def stacked_bars(
    times: Sequence[int],
    step: int,
    layers: Sequence[Layer],
    *,
    view: str,
    label: str,
    marks: Sequence[Mark] = (),
    height: int = 230,
) -> Chart:
    n = len(times)
    stacks = [sum(layer.values[i] for layer in layers) for i in range(n)]
    ymax = nice_max(max(stacks, default=0))
    total = float(sum(stacks))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, height - TOP - BOTTOM
    parts = _frame(height, ymax, "", label)
    parts[0] = parts[0].replace("<svg ", f'<svg data-total="{total:g}" ', 1)
    bar_w = plot_w / max(n, 1)
    gap = 1.0 if bar_w > 4 else 0.0
    fmt = _TIME_FORMATS.get(view, "%d %b")
    for i in range(n):
        base = 0.0
        when = time.strftime(f"{fmt} UTC" if view != "day" else "%H:%M UTC", time.gmtime(times[i]))
        for layer in layers:
            value = layer.values[i]
            if value <= 0:
                continue
            h = plot_h * value / ymax
            y = TOP + plot_h - plot_h * base / ymax - h
            x = LEFT + i * bar_w
            parts.append(
                f'<rect x="{x:.2f}" y="{y:.2f}" width="{max(bar_w - gap, 0.6):.2f}" '
                f'height="{h:.2f}" fill="{layer.color}"><title>{escape(layer.label)} '
                f"{escape(when)}: {_fmt(value)}</title></rect>"
            )
            base += value
    parts += _time_labels(times, step, view, height)
    parts += _marks(marks, times, step, height)
    parts.append(
        f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{TOP + plot_h}" y2="{TOP + plot_h}" '
        'class="baseline"/></svg>'
    )
    legend = [(layer.label, layer.color) for layer in layers]
    return Chart("".join(parts), legend, total)


def share_line(
    times: Sequence[int],
    step: int,
    part: Sequence[float],
    whole: Sequence[float],
    *,
    view: str,
    label: str,
    color: str = "#c2410c",
    marks: Sequence[Mark] = (),
    height: int = 150,
) -> Chart:
    """``part / whole`` in percent per step; steps without mail are gaps."""
    n = len(times)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, height - TOP - BOTTOM
    parts = _frame(height, 100.0, "%", label)
    bar_w = plot_w / max(n, 1)
    segments: list[list[str]] = [[]]
    for i in range(n):
        if whole[i] <= 0:
            if segments[-1]:
                segments.append([])
            continue
        share = 100.0 * part[i] / whole[i]
        x = LEFT + (i + 0.5) * bar_w
        y = TOP + plot_h - plot_h * share / 100
        segments[-1].append(f"{x:.1f},{y:.1f}")
    for points in segments:
        if len(points) == 1:
            cx, cy = points[0].split(",")
            parts.append(f'<circle cx="{cx}" cy="{cy}" r="2.5" fill="{color}"/>')
        elif points:
            parts.append(
                f'<polyline points="{" ".join(points)}" fill="none" stroke="{color}" '
                'stroke-width="1.8"/>'
            )
    parts += _time_labels(times, step, view, height)
    parts += _marks(marks, times, step, height)
    parts.append("</svg>")
    total = 100.0 * sum(part) / sum(whole) if sum(whole) else 0.0
    return Chart("".join(parts), [(label, color)], round(total, 2))
