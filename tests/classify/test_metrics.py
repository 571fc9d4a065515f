"""Metrics against hand-computed cases."""

from __future__ import annotations

import math

import pytest

from mailmoat.classify import metrics

S, H = True, False


@pytest.mark.parametrize(
    ("label", "scores", "labels", "expected"),
    [
        ("perfect", [0.9, 0.8, 0.2, 0.1], [S, S, H, H], 0.0),
        ("inverted", [0.1, 0.2, 0.8, 0.9], [S, S, H, H], 100.0),
        # Pairs (spam, ham): 0.9>0.5, 0.9>0.7, 0.6>0.5, 0.6<0.7 -> 3/4 right.
        ("one swap", [0.9, 0.6, 0.7, 0.5], [S, S, H, H], 25.0),
        # Tie counts one half: pairs 0.5=0.5 (1/2), 0.5>0.1 (1), 0.9>both (2) -> 3.5/4.
        ("tie", [0.9, 0.5, 0.5, 0.1], [S, S, H, H], 12.5),
        ("all tied", [0.3, 0.3, 0.3], [S, H, H], 50.0),
    ],
)
def test_one_minus_auc(
    label: str, scores: list[float], labels: list[bool], expected: float
) -> None:
    assert metrics.one_minus_auc_pct(scores, labels) == pytest.approx(expected), label


def test_lam_is_logit_average() -> None:
    # 10 ham, 1 at/above 0.5 -> hm = 0.1; 4 spam, 2 below -> sm = 0.5.
    scores = [0.6] + [0.1] * 9 + [0.9, 0.9, 0.2, 0.3]
    labels = [H] * 10 + [S] * 4
    logit = (math.log(0.1 / 0.9) + math.log(0.5 / 0.5)) / 2
    expected = 100 / (1 + math.exp(-logit))  # 25.0% exactly: sqrt(1/9)=1/3 odds
    assert expected == pytest.approx(25.0)
    assert metrics.lam_pct(scores, labels) == pytest.approx(expected)


def test_lam_with_zero_errors_stays_finite() -> None:
    # hm = 0.5/4, sm = 0.5/2: logit average of 1/7 and 1/3 odds.
    value = metrics.lam_pct([0.1, 0.2, 0.3, 0.4, 0.9, 0.8], [H, H, H, H, S, S])
    odds = math.sqrt((0.125 / 0.875) * (0.25 / 0.75))
    assert value == pytest.approx(100 * odds / (1 + odds))


def test_fpr_at_recall() -> None:
    # 100 spam at 1..100; 99% recall needs threshold 2 (99 spam >= 2).
    spam = list(range(1, 101))
    ham = [0.5, 1.5, 2.0, 3.0]  # ham >= 2: 2.0 and 3.0 -> 50%
    scores = [float(s) for s in spam] + ham
    labels = [S] * 100 + [H] * 4
    assert metrics.fpr_at_recall(scores, labels, 0.99) == pytest.approx(50.0)
    assert metrics.fpr_at_recall(scores, labels, 1.0) == pytest.approx(75.0)


def test_recall_at_fpr() -> None:
    # 2000 ham: 0.1% allows 2 false positives, so the 3rd highest ham (5.0)
    # bounds the threshold: spam strictly above 5.0 counts.
    ham = [9.0, 8.0, 5.0] + [0.0] * 1997
    spam = [10.0, 7.0, 6.0, 5.0, 1.0]
    scores = ham + spam
    labels = [H] * 2000 + [S] * 5
    assert metrics.recall_at_fpr(scores, labels, 0.001) == pytest.approx(60.0)
    assert metrics.recall_at_fpr(scores, labels, 0.0) == pytest.approx(20.0)


def test_roc_points() -> None:
    fpr, tpr = metrics.roc_points([0.9, 0.5, 0.5, 0.1], [S, S, H, H])
    assert list(fpr) == [0.0, 0.0, 50.0, 100.0]
    assert list(tpr) == [0.0, 50.0, 100.0, 100.0]


def test_one_class_gives_nan() -> None:
    assert math.isnan(metrics.one_minus_auc_pct([0.1, 0.2], [H, H]))
    assert math.isnan(metrics.lam_pct([0.1], [S]))
