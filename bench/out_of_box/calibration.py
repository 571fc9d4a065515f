"""Calibration of the classifier's score curves on mail the model never saw.

Usage (from the repository root)::

    .venv/bin/python bench/out_of_box/calibration.py [--corpus ../shared/corpus]
        [--thresholds 5,10,15] [--evidence 5]

Builds the cross-time variant (``mailmoat.classify.recipe``: the recipe of
``make model`` on the 2002 spam and 60% of each ham set) in memory and
scores what it never trained on: the 2005 spam and the other 40% of the ham.
Prints four Markdown tables:

0. (1-AUC)% and spam recall at 0.1%, 0.5% and 1% of the held-out ham
   flagged (``--feature-set 1`` for the feature set of older models);
1. for each spam probability p, the held-out ham at or above p (count,
   rate, and a 95% upper bound of the rate), the spam recall at p and the
   precision on this mix (about 46% spam);
2. for each ham probability, the share of ham and of spam at or below it
   (where ``BAYES_HAM`` would credit the message);
3. a kind of ham the model never saw: the variant trained without any
   hard_ham (commercial newsletters), for each spam probability the share
   of all 250 hard_ham at or above it;
4. with the default curves (``ClassifierConfig``), for each action
   threshold: spam caught and ham flagged by the classifier alone and with
   one independent piece of evidence worth ``--evidence`` points, and the
   never-trained hard_ham flagged by the classifier alone.

Loopback only (no network at all); writes nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt

from mailmoat.checks.classifier import curve_score
from mailmoat.classify import metrics
from mailmoat.classify.corpus import find_corpus
from mailmoat.classify.features import FeatureConfig, extract
from mailmoat.classify.model import Model
from mailmoat.classify.recipe import (
    CROSS_TIME_TEST_SPAM,
    HAM_SETS,
    Sample,
    build_model,
    cross_time,
    cross_time_heldout,
    load_messages,
)
from mailmoat.config import ClassifierConfig
from mailmoat.message import parse_message

SPAM_POINTS = (0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.998, 0.999, 0.9995, 0.9999)
# The ham set standing in for a kind of ham the model never saw.
UNSEEN_KIND = "20030228_hard_ham"
HAM_POINTS = (0.2, 0.1, 0.05, 0.01, 0.001, 0.0001)
Floats = npt.NDArray[np.float64]


def upper_rate(count: int, total: int) -> float:
    """One-sided 95% upper bound of a rate seen ``count`` times in ``total``
    (Clopper-Pearson, found by bisection on the binomial tail)."""
    if count >= total:
        return 1.0
    low, high = count / total, 1.0
    for _ in range(60):
        mid = (low + high) / 2
        tail = sum(_binomial(total, k, mid) for k in range(count + 1))
        low, high = (mid, high) if tail > 0.05 else (low, mid)
    return high


def _binomial(n: int, k: int, p: float) -> float:
    from math import comb, exp, log

    if p <= 0.0:
        return 1.0 if k == 0 else 0.0
    return float(exp(log(comb(n, k)) + k * log(p) + (n - k) * np.log1p(-p)))


def score_heldout(
    corpus: Path, features: FeatureConfig | None = None
) -> tuple[Model, Floats, npt.NDArray[np.bool_], list[str]]:
    """The variant and its probabilities, labels and sets on the held-out mail."""
    model = build_model(load_messages(corpus, cross_time), features)
    heldout = load_messages(corpus, cross_time_heldout)
    probabilities = np.array(
        [model.probability(extract(parse_message(s.raw), model.features)) for s in heldout]
    )
    labels = np.array([s.is_spam for s in heldout])
    return model, probabilities, labels, [s.set_name for s in heldout]


def without_hard_ham(set_name: str, member: str) -> bool:
    """The cross-time training selection with no hard_ham at all."""
    return cross_time(set_name, member) and set_name != UNSEEN_KIND


def score_unseen_kind(corpus: Path, features: FeatureConfig | None = None) -> tuple[Floats, Floats]:
    """A kind of ham the model never saw: the variant trained without any
    hard_ham (commercial newsletters); the probabilities it gives every
    hard_ham message and the 2005 spam."""
    model = build_model(load_messages(corpus, without_hard_ham), features)
    hard = load_messages(corpus, lambda set_name, _: set_name == UNSEEN_KIND)
    spam = load_messages(corpus, lambda set_name, _: set_name == CROSS_TIME_TEST_SPAM)

    def probabilities(samples: list[Sample]) -> Floats:
        return np.array(
            [model.probability(extract(parse_message(s.raw), model.features)) for s in samples]
        )

    return probabilities(hard), probabilities(spam)


def unseen_table(hard: Floats, spam: Floats) -> str:
    lines = [
        "| p >= | hard_ham flagged (never trained) | rate | 2005 spam recall |",
        "|---:|---:|---:|---:|",
    ]
    for point in SPAM_POINTS:
        flagged = int(np.count_nonzero(hard >= point))
        lines.append(
            f"| {point:g} | {flagged}/{len(hard)} | {100 * flagged / len(hard):.1f}% | "
            f"{100 * np.mean(spam >= point):.1f}% |"
        )
    return "\n".join(lines)


def spam_table(probabilities: Floats, labels: npt.NDArray[np.bool_], sets: list[str]) -> str:
    ham, spam = probabilities[~labels], probabilities[labels]
    names = np.array(sets)[~labels]
    short = [name.removeprefix("20030228_") for name in HAM_SETS]
    lines = [
        "| p >= | ham flagged | ham rate | 95% upper | "
        + " | ".join(short)
        + " | spam recall | precision |",
        "|---:|---:|---:|---:|" + "---:|" * len(short) + "---:|---:|",
    ]
    for point in SPAM_POINTS:
        flagged = int(np.count_nonzero(ham >= point))
        caught = int(np.count_nonzero(spam >= point))
        per_set = [int(np.count_nonzero((ham >= point) & (names == name))) for name in HAM_SETS]
        precision = caught / (caught + flagged) if caught + flagged else float("nan")
        lines.append(
            f"| {point:g} | {flagged}/{len(ham)} | {100 * flagged / len(ham):.2f}% | "
            f"{100 * upper_rate(flagged, len(ham)):.2f}% | "
            + " | ".join(str(n) for n in per_set)
            + f" | {100 * caught / len(spam):.1f}% | {100 * precision:.2f}% |"
        )
    return "\n".join(lines)


def ham_table(probabilities: Floats, labels: npt.NDArray[np.bool_]) -> str:
    ham, spam = probabilities[~labels], probabilities[labels]
    lines = ["| p <= | ham credited | spam credited |", "|---:|---:|---:|"]
    for point in HAM_POINTS:
        lines.append(
            f"| {point:g} | {100 * np.mean(ham <= point):.1f}% | "
            f"{np.count_nonzero(spam <= point)}/{len(spam)} "
            f"({100 * np.mean(spam <= point):.2f}%) |"
        )
    return "\n".join(lines)


def bayes_score(probability: float, config: ClassifierConfig) -> float:
    """The score the check gives (``checks/classifier.py``)."""
    if probability >= config.spam_threshold:
        return round(curve_score(config.spam_curve, probability), 2)
    if probability <= config.ham_threshold:
        return round(curve_score(config.ham_curve, probability), 2)
    return 0.0


def action_table(
    probabilities: Floats,
    labels: npt.NDArray[np.bool_],
    unseen: Floats,
    thresholds: list[float],
    evidence: float,
    config: ClassifierConfig,
) -> str:
    scores = np.array([bayes_score(float(p), config) for p in probabilities])
    ham, spam = scores[~labels], scores[labels]
    hard = np.array([bayes_score(float(p), config) for p in unseen])
    lines = [
        f"| threshold | spam, classifier alone | ham, classifier alone | "
        f"spam, + {evidence:g} | ham, + {evidence:g} | never-trained hard_ham, alone |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for threshold in thresholds:
        row = [
            f"{100 * np.mean(spam >= threshold):.1f}%",
            f"{np.count_nonzero(ham >= threshold)}/{len(ham)}",
            f"{100 * np.mean(spam + evidence >= threshold):.1f}%",
            f"{np.count_nonzero(ham + evidence >= threshold)}/{len(ham)}",
            f"{np.count_nonzero(hard >= threshold)}/{len(hard)}",
        ]
        lines.append(f"| {threshold:g} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--corpus", help="corpus directory (default: find it)")
    parser.add_argument("--thresholds", default="5,10,15", help="action thresholds (5,10,15)")
    parser.add_argument("--evidence", type=float, default=5.0, help="independent evidence (5)")
    parser.add_argument("--feature-set", type=int, default=FeatureConfig().feature_set)
    args = parser.parse_args()
    corpus = Path(args.corpus) if args.corpus else find_corpus()
    if corpus is None:
        print("calibration: corpus not found", file=sys.stderr)
        return 2
    features = FeatureConfig(feature_set=args.feature_set)
    model, probabilities, labels, sets = score_heldout(corpus, features)
    a, b = model.calibration
    print(f"variant (feature set {args.feature_set}): calibration a={a:.3f} b={b:.3f}; ", end="")
    print(f"held out: {int(labels.sum())} spam, {int((~labels).sum())} ham")
    # Ranking on margins (probabilities saturate and would tie at the top).
    margins = np.log(probabilities / np.maximum(1 - probabilities, 1e-300))
    recalls = [metrics.recall_at_fpr(margins, labels, rate) for rate in (0.001, 0.005, 0.01)]
    print(f"(1-AUC)% {metrics.one_minus_auc_pct(margins, labels):.3f}; spam recall at ", end="")
    print("0.1/0.5/1% FPR " + " / ".join(f"{r:.1f}%" for r in recalls) + "\n")
    print(spam_table(probabilities, labels, sets), end="\n\n")
    print(ham_table(probabilities, labels), end="\n\n")
    unseen_hard, unseen_spam = score_unseen_kind(corpus, features)
    print(unseen_table(unseen_hard, unseen_spam), end="\n\n")
    thresholds = [float(t) for t in args.thresholds.split(",")]
    config = ClassifierConfig()
    print(action_table(probabilities, labels, unseen_hard, thresholds, args.evidence, config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
