"""Statistical classifier check (data stage): the content's spam probability.

Contract: scores ``tx.message`` (parsed once by the transaction) with the
classifier model and adds at most one symbol:

- ``BAYES_SPAM`` when the probability reaches ``classifier.spam_threshold``,
  scored along ``classifier.spam_curve`` (default 1.0 at 0.9, 5.0 at 0.99,
  up to 7.0 at 0.9999; docs/classifier.md gives the measurements behind it);
- ``BAYES_HAM`` when it is at or below ``classifier.ham_threshold``, scored
  along ``classifier.ham_curve`` (default -0.5 at 0.1 down to -3.0 at 0.001).

The detail carries the probability. The model is the process's shared one
once published (``services.model``, a ``ModelHolder`` the cluster sync and
autolearn publish to: read per message, so a scan sees either model, never
a mix), else the file named by ``classifier.model_path`` or the shipped
default, loaded once per process.
CPU only (about a millisecond per message), no I/O; failure mode: the
runner's default.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from typing import ClassVar

from mailmoat.checks.base import Check, Services
from mailmoat.checks.spec import CheckSpec, SymbolSpec
from mailmoat.classify import Classifier, ModelFormatError
from mailmoat.classify.holder import ModelHolder
from mailmoat.config import ClassifierConfig, ConfigError
from mailmoat.core.symbols import Evidence, Stage
from mailmoat.core.transaction import Transaction

SPEC = CheckSpec(
    name="classifier",
    stages=(Stage.DATA,),
    summary="The statistical classifier's spam probability of the content.",
    symbols=(
        SymbolSpec(
            "BAYES_SPAM",
            None,
            "The classifier finds the content spam-like (score along classifier.spam_curve).",
            "content",
        ),
        SymbolSpec(
            "BAYES_HAM",
            None,
            "The classifier finds the content ham-like (score along classifier.ham_curve).",
            "content",
        ),
    ),
)


def curve_score(curve: Sequence[tuple[float, float]], probability: float) -> float:
    """Piecewise-linear score at ``probability`` along (probability, score)
    points ordered from the threshold outwards; flat beyond both ends."""
    if not curve:
        return 0.0
    points = sorted(curve)
    if probability <= points[0][0]:
        return points[0][1]
    if probability >= points[-1][0]:
        return points[-1][1]
    for (p0, s0), (p1, s1) in itertools.pairwise(points):
        if p0 <= probability <= p1:
            return s0 if p1 == p0 else s0 + (s1 - s0) * (probability - p0) / (p1 - p0)
    return points[-1][1]


class ClassifierCheck(Check):
    name: ClassVar[str] = "classifier"
    stage: ClassVar[str] = Stage.DATA.value

    def __init__(
        self, classifier: Classifier, config: ClassifierConfig, holder: ModelHolder | None = None
    ) -> None:
        self.configured = classifier
        self.config = config
        self.holder = holder or ModelHolder()

    @property
    def classifier(self) -> Classifier:
        """The shared model once published, else the configured one."""
        shared = self.holder.classifier
        return self.configured if shared is None else shared

    async def run(self, tx: Transaction, evidence: Evidence) -> None:
        probability = self.classifier.score(tx.message)
        detail = f"p={probability:.4f}"
        if probability >= self.config.spam_threshold:
            score = round(curve_score(self.config.spam_curve, probability), 2)
            SPEC.add(evidence, "BAYES_SPAM", detail, score=score)
        elif probability <= self.config.ham_threshold:
            score = round(curve_score(self.config.ham_curve, probability), 2)
            SPEC.add(evidence, "BAYES_HAM", detail, score=score)


@functools.lru_cache(maxsize=8)
def _load(path: str) -> Classifier:
    """Models by path, loaded once per process (the check only reads them)."""
    return Classifier.load(path or None)


def build(services: Services) -> list[Check]:
    config = services.config.classifier
    try:
        classifier = _load(config.model_path)
    except (OSError, ModelFormatError) as exc:
        raise ConfigError(f"classifier.model_path {config.model_path!r}: {exc}") from exc
    return [ClassifierCheck(classifier, config, services.model)]
