"""The SVG charts: totals, stacking, event marks, calendar ticks, escaping."""

from __future__ import annotations

import re

from mailmoat.web.charts import Layer, Mark, nice_max, share_line, stacked_bars

DAY = 86_400
START = 1_700_006_400  # a UTC midnight


def test_stacked_bars_total_marks_and_ticks() -> None:
    times = [START + i * 3600 for i in range(48)]
    layers = [Layer("accepted", "#0a0", [1.0] * 48), Layer("<rejected>", "#a00", [0.0] * 47 + [3])]
    marks = [Mark(START + 10 * 3600, "spam -75% vs 7-day median", up=False), Mark(0, "old", True)]
    chart = stacked_bars(times, 3600, layers, view="week", label="Mail", marks=marks)
    assert chart.total == 51
    assert 'data-total="51"' in chart.svg
    assert chart.svg.count('class="mark mark-down"') == 1 and "mark-up" not in chart.svg
    assert "&lt;rejected&gt;" in chart.svg and "<rejected>" not in chart.svg
    # week view: one tick per UTC midnight (two midnights in 48 hours)
    assert len(re.findall(r'class="tick"', chart.svg)) == 2
    assert len(re.findall(r"<rect ", chart.svg)) == 49  # zero values draw nothing


def test_share_line_skips_steps_without_mail() -> None:
    times = [START + i * 300 for i in range(4)]
    chart = share_line(times, 300, [1, 0, 2, 0], [2, 0, 4, 0], view="day", label="Spam share")
    assert chart.total == 50.0
    assert "<circle" in chart.svg and "<polyline" not in chart.svg  # two isolated points


def test_nice_max_has_round_quarters() -> None:
    for value, expected in [(0, 4), (3, 4), (5, 8), (11, 12), (37, 40), (999, 1000)]:
        assert nice_max(value) == expected
