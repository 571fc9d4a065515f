"""Step-change detection against a trailing baseline.

Contract: ``detect_steps`` walks a series and reports the points where the
value moved by at least ``threshold`` (0.5 = 50 %) against the median of
the ``window`` values one ``period`` apart before it (period 1: the previous
``window`` points; period 24 on hourly data: the same hour on previous days),
held for ``sustain`` consecutive points. Baselines under ``min_baseline``
are not judged (a quiet night is not an event). One event per run: a level
that stays shifted is reported once, when it starts. Pure function, no I/O.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class StepEvent:
    series: str
    time: float
    value: float
    baseline: float
    change: float
    baseline_label: str
    step: int

    @property
    def text(self) -> str:
        return f"{self.series} {self.change:+.0%} vs {self.baseline_label}"

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "text": self.text}


def detect_steps(
    name: str,
    times: Sequence[float],
    values: Sequence[float],
    *,
    window: int = 7,
    period: int = 1,
    sustain: int = 1,
    threshold: float = 0.5,
    min_baseline: float = 20.0,
    baseline_label: str = "7-day median",
    step: int = 86_400,
) -> list[StepEvent]:
    events: list[StepEvent] = []
    baselines: list[float] = []
    run_direction = 0
    run_length = 0
    reported = False
    for i, value in enumerate(values):
        history = [values[i - k * period] for k in range(1, window + 1) if i - k * period >= 0]
        direction = 0
        baseline = statistics.median(history) if len(history) == window else 0.0
        baselines.append(baseline)
        if baseline >= min_baseline and baseline > 0:
            change = (value - baseline) / baseline
            if abs(change) >= threshold:
                direction = 1 if change > 0 else -1
        if direction != 0 and direction == run_direction:
            run_length += 1
        else:
            run_direction, run_length, reported = direction, (1 if direction else 0), False
        if direction and run_length >= sustain and not reported:
            first = i - sustain + 1
            events.append(
                StepEvent(
                    series=name,
                    time=times[first],
                    value=values[first],
                    baseline=baselines[first],
                    change=round((values[first] - baselines[first]) / baselines[first], 4),
                    baseline_label=baseline_label,
                    step=step,
                )
            )
            reported = True
    return events
