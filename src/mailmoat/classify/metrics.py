"""Filter evaluation measures of the TREC spam track.

Contract: every function takes ``scores`` (higher = spammier) and ``labels``
(True = spam) of equal length and returns a float; none raises on one-class
input (it returns NaN instead). Percentages are in percent (0-100).

* ``one_minus_auc_pct``: 100 * (1 - area under the ROC curve), the
  Mann-Whitney statistic with ties counted one half.
* ``lam_pct``: logistic average misclassification at ``threshold``:
  logit^-1((logit(hm) + logit(sm)) / 2) where hm is the fraction of ham at
  or above the threshold and sm the fraction of spam below it. A rate of 0
  (or 1) is replaced by 0.5/n (or 1 - 0.5/n) so the logit stays finite.
* ``fpr_at_recall``: % of ham scored at or above the highest threshold that
  still catches the given fraction of spam (ties with it count as caught).
* ``recall_at_fpr``: % of spam scored strictly above the highest ham score
  that must stay below the threshold so at most the given fraction of ham
  is misclassified.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def _split(scores: Sequence[float], labels: Sequence[bool]) -> tuple[FloatArray, FloatArray]:
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=bool)
    if s.shape != y.shape:
        raise ValueError("scores and labels differ in length")
    return s[y], s[~y]


def one_minus_auc_pct(scores: Sequence[float], labels: Sequence[bool]) -> float:
    spam, ham = _split(scores, labels)
    if len(spam) == 0 or len(ham) == 0:
        return math.nan
    both = np.concatenate([spam, ham])
    order = np.argsort(both, kind="mergesort")
    ranks = np.empty(len(both), dtype=np.float64)
    sorted_scores = both[order]
    # Average ranks over runs of equal scores (ties count one half).
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    ends = np.r_[starts[1:], len(both)]
    for start, end in zip(starts, ends, strict=True):
        ranks[order[start:end]] = (start + end + 1) / 2.0
    spam_rank_sum = float(ranks[: len(spam)].sum())
    auc = (spam_rank_sum - len(spam) * (len(spam) + 1) / 2.0) / (len(spam) * len(ham))
    return 100.0 * (1.0 - auc)


def lam_pct(scores: Sequence[float], labels: Sequence[bool], threshold: float = 0.5) -> float:
    spam, ham = _split(scores, labels)
    if len(spam) == 0 or len(ham) == 0:
        return math.nan
    hm = _clamp(float(np.count_nonzero(ham >= threshold)), len(ham))
    sm = _clamp(float(np.count_nonzero(spam < threshold)), len(spam))
    mean = (_logit(hm) + _logit(sm)) / 2.0
    return 100.0 / (1.0 + math.exp(-mean))


def fpr_at_recall(scores: Sequence[float], labels: Sequence[bool], recall: float = 0.99) -> float:
    spam, ham = _split(scores, labels)
    if len(spam) == 0 or len(ham) == 0:
        return math.nan
    needed = max(1, math.ceil(recall * len(spam) - 1e-9))
    threshold = np.sort(spam)[::-1][needed - 1]
    return 100.0 * float(np.count_nonzero(ham >= threshold)) / len(ham)


def recall_at_fpr(scores: Sequence[float], labels: Sequence[bool], fpr: float = 0.001) -> float:
    spam, ham = _split(scores, labels)
    if len(spam) == 0 or len(ham) == 0:
        return math.nan
    allowed = math.floor(fpr * len(ham) + 1e-9)
    if allowed >= len(ham):
        return 100.0
    # The (allowed+1)-th highest ham must stay below the threshold.
    bar = np.sort(ham)[::-1][allowed]
    return 100.0 * float(np.count_nonzero(spam > bar)) / len(spam)


def roc_points(scores: Sequence[float], labels: Sequence[bool]) -> tuple[FloatArray, FloatArray]:
    """(false positive rate, spam recall) at every distinct threshold, in %."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=bool)
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last = np.r_[s[1:] != s[:-1], True]
    tp = np.cumsum(y)[last]
    fp = np.cumsum(~y)[last]
    n_spam, n_ham = max(int(y.sum()), 1), max(int((~y).sum()), 1)
    fpr = np.r_[0.0, 100.0 * fp / n_ham]
    tpr = np.r_[0.0, 100.0 * tp / n_spam]
    return fpr, tpr


def _clamp(errors: float, n: int) -> float:
    return min(max(errors, 0.5), n - 0.5) / n


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))
