"""Outcomes, decay and the store layout of the reputation counts."""

from __future__ import annotations

import pytest

from mailmoat.reputation.counts import HOUR, decay, outcome_of, stale_fields
from reputation_support import record

NOW = 1_700_000_000.0
HOUR_NOW = int(NOW // HOUR)


@pytest.mark.parametrize(
    ("action", "reason", "letter"),
    [
        ("accept", "delivered", "a"),
        ("add_header", "score", "t"),
        ("quarantine", "score", "q"),
        ("reject", "dnsbl", "r"),
        ("reject", "relay_denied", None),
        ("reject", "size", None),
        ("soft_reject", "greylist", None),
    ],
)
def test_outcome_of_a_record(action: str, reason: str, letter: str | None) -> None:
    assert outcome_of(record("192.0.2.1", action, reason)) == letter


def test_counts_halve_every_half_life_and_stale_hours_vanish() -> None:
    fields: dict[str, bytes | float] = {
        f"r:{HOUR_NOW}": 10.0,
        f"a:{HOUR_NOW - 24}": 8.0,  # a day old: half weight with a day's half-life
        f"q:{HOUR_NOW - 24 * 8}": 100.0,  # beyond a week's retention
        "junk": 5.0,
    }
    counts = decay(fields, NOW, half_life=86_400, retention=7 * 86_400)
    assert counts.refused == 10  # this hour: full weight
    # a day-old hour: its age counts from its end, so a little over half
    ended = (HOUR_NOW - 24 + 1) * HOUR
    assert counts.accepted == pytest.approx(8.0 * 0.5 ** ((NOW - ended) / 86_400))
    assert 4.0 < counts.accepted < 4.2
    assert counts.quarantined == 0
    assert counts.last_bad == HOUR_NOW * HOUR
    assert 0.7 < counts.bad_share < 0.72
    assert stale_fields([*fields, "lb"], NOW, 7 * 86_400) == [f"q:{HOUR_NOW - 24 * 8}"]


def test_empty_counts_are_zero_not_an_error() -> None:
    counts = decay({}, NOW, 86_400, 604_800)
    assert counts.total == 0 and counts.bad_share == 0 and counts.good_share == 0
