"""Batch training on feature arrays: the shipped model and evaluations.

Contract: ``train(model, samples, passes)`` makes ``passes`` online passes
over ``samples`` (index array, is_spam) in the given order, learning with
the model's thick threshold; ``calibrated_model(samples, ...)`` returns a
model trained on all samples whose Platt calibration was fitted on a
held-out fold, so its probabilities are out-of-sample estimates. Both are
deterministic for a given input order.
"""

from __future__ import annotations

from collections.abc import Sequence

from mailmoat.classify.features import FeatureConfig, IndexArray
from mailmoat.classify.model import Model, fit_platt

Sample = tuple[IndexArray, bool]


def train(model: Model, samples: Sequence[Sample], passes: int = 1) -> int:
    """Online passes over ``samples``; returns how many updates were made."""
    updates = 0
    for _ in range(passes):
        for indices, is_spam in samples:
            updates += model.learn(indices, is_spam)
    return updates


def calibrated_model(
    samples: Sequence[Sample],
    features: FeatureConfig,
    *,
    passes: int = 3,
    holdout_every: int = 5,
) -> Model:
    """Fit the calibration on every ``holdout_every``-th sample held out,
    then train the final model on everything with that calibration."""

    def fresh() -> Model:
        return Model(features)

    probe = fresh()
    held = [s for i, s in enumerate(samples) if i % holdout_every == 0]
    kept = [s for i, s in enumerate(samples) if i % holdout_every != 0]
    train(probe, kept, passes)
    calibration = fit_platt([probe.margin(x) for x, _ in held], [y for _, y in held])
    final = fresh()
    train(final, samples, passes)
    final.calibration = calibration
    return final
