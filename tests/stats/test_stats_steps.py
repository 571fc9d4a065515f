"""Step-change detection against a trailing median (table-driven)."""

from __future__ import annotations

import pytest

from mailmoat.stats.steps import detect_steps

DAY = 86_400

CASES = [
    # label, values, kwargs, expected [(index, rounded change)]
    ("steady series: no event", [100] * 20, {}, []),
    ("McColo: spam falls by three quarters", [100] * 10 + [25] * 5, {}, [(10, -0.75)]),
    ("a level that stays shifted is reported once", [100] * 8 + [300] * 10, {}, [(8, 2.0)]),
    ("below the minimum baseline nothing is judged", [5] * 10 + [50], {}, []),
    ("small wiggles are not steps", [100, 120, 90, 110, 100, 95, 105, 80, 130], {}, []),
    ("not enough history yet", [100, 100, 10], {}, []),
    (
        "sustain=2 ignores a one-point blip and reports the run start",
        [100] * 8 + [10] + [100] * 2 + [10, 10],
        {"sustain": 2},
        [(11, -0.9)],
    ),
    (
        "period 2 compares like with like",
        [100, 10] * 8 + [25, 10],
        {"period": 2, "min_baseline": 5},
        [(16, -0.75)],
    ),
]


@pytest.mark.parametrize(
    ("label", "values", "kwargs", "expected"), CASES, ids=[c[0] for c in CASES]
)
def test_detect_steps(
    label: str, values: list[float], kwargs: dict[str, int], expected: list[tuple[int, float]]
) -> None:
    times = [i * DAY for i in range(len(values))]
    events = detect_steps("spam", times, values, **kwargs)  # type: ignore[arg-type]
    assert [(int(e.time // DAY), round(e.change, 2)) for e in events] == expected


def test_event_text_names_series_change_and_baseline() -> None:
    (event,) = detect_steps("spam", [i * DAY for i in range(12)], [100.0] * 10 + [25.0, 25.0])
    assert event.text == "spam -75% vs 7-day median"
    assert event.baseline == 100 and event.value == 25
