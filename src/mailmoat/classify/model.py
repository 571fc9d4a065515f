"""The online learner: logistic regression over hashed binary features.

Contract: a ``Model`` maps a feature index array (``features.extract``) to a
margin (``margin``) and a calibrated spam probability (``probability``), and
learns one labelled message at a time (``learn``). Feature vectors are
binary and L2-normalised (each present feature weighs 1/sqrt(n)), so long
and short messages learn at the same rate.

Learning follows the TREC-winning recipe for online filters: a stochastic
gradient step on the logistic loss, taken only when the message is not
already on the right side of a *thick* threshold (``margin_threshold``):
train-on-error plus near misses, which keeps the model from over-fitting the
easy bulk. Scoring and learning share a lock, so a model is safe to score
from many threads while another thread learns; each call holds it only for
one gather or scatter over the message's indices.

The probability is Platt-calibrated: ``sigmoid(a * margin + b)``, with
(a, b) fitted by ``fit_platt`` on out-of-sample margins (those seen before
each message was learned).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from mailmoat.classify.features import FeatureConfig, IndexArray


class Model:
    """Weights, bias, calibration and learning settings of one classifier."""

    def __init__(
        self,
        features: FeatureConfig | None = None,
        *,
        learning_rate: float = 8.0,
        margin_threshold: float = 1.2,
        weights: npt.NDArray[np.float32] | None = None,
        bias: float = 0.0,
        calibration: tuple[float, float] = (1.0, 0.0),
        n_learned: int = 0,
        version: int = 0,
    ) -> None:
        self.features = features or FeatureConfig()
        size = 1 << self.features.hash_bits
        if weights is None:
            weights = np.zeros(size, dtype=np.float32)
        if weights.shape != (size,):
            raise ValueError(f"weights have shape {weights.shape}, expected ({size},)")
        self.weights = weights
        self.bias = bias
        self.learning_rate = learning_rate
        self.margin_threshold = margin_threshold
        self.calibration = calibration
        self.n_learned = n_learned
        # Store version this model was loaded from or last saved as.
        self.version = version
        self._lock = threading.Lock()

    def margin(self, indices: IndexArray) -> float:
        """Signed distance from the decision boundary; > 0 leans spam."""
        if len(indices) == 0:
            return self.bias
        with self._lock:
            total = float(self.weights[indices].sum(dtype=np.float64))
            bias = self.bias
        return total / math.sqrt(len(indices)) + bias

    def probability(self, indices: IndexArray) -> float:
        """Calibrated spam probability in [0, 1]."""
        return self.calibrate(self.margin(indices))

    def calibrate(self, margin: float) -> float:
        a, b = self.calibration
        return _sigmoid(a * margin + b)

    def learn(self, indices: IndexArray, is_spam: bool, *, force: bool = False) -> bool:
        """One online step; returns True if the weights changed.

        Messages already beyond the thick threshold on their correct side are
        skipped unless ``force``.
        """
        return self.learn_step(indices, is_spam, force=force) != 0.0

    def learn_step(self, indices: IndexArray, is_spam: bool, *, force: bool = False) -> float:
        """``learn``, returning the gradient step taken (0.0 when skipped), so
        that ``unlearn_step`` can take it back later."""
        margin = self.margin(indices)
        target = 1.0 if is_spam else 0.0
        signed = margin if is_spam else -margin
        if not force and signed >= self.margin_threshold:
            return 0.0
        step = self.learning_rate * (target - _sigmoid(margin))
        self._apply(indices, step, 1)
        return step

    def unlearn_step(self, indices: IndexArray, step: float) -> None:
        """Take back a step ``learn_step`` returned for the same indices."""
        self._apply(indices, -step, -1)

    def _apply(self, indices: IndexArray, step: float, count: int) -> None:
        with self._lock:
            if len(indices):
                self.weights[indices] += np.float32(step / math.sqrt(len(indices)))
            self.bias += 0.01 * step
            self.n_learned = max(0, self.n_learned + count)

    def copy(self) -> Model:
        """An independent copy (weights included)."""
        with self._lock:
            return Model(
                self.features,
                learning_rate=self.learning_rate,
                margin_threshold=self.margin_threshold,
                weights=self.weights.copy(),
                bias=self.bias,
                calibration=self.calibration,
                n_learned=self.n_learned,
                version=self.version,
            )


def fit_platt(margins: Sequence[float], labels: Sequence[bool]) -> tuple[float, float]:
    """Platt scaling (a, b) minimising log loss of sigmoid(a*m + b), with
    Platt's smoothed targets; a few Newton steps. (1, 0) when degenerate."""
    m = np.asarray(margins, dtype=np.float64)
    y = np.asarray(labels, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return 1.0, 0.0
    target = np.where(y, (n_pos + 1.0) / (n_pos + 2.0), 1.0 / (n_neg + 2.0))
    a, b = 1.0, 0.0
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-(a * m + b)))
        grad = np.array([np.sum((p - target) * m), np.sum(p - target)])
        w = p * (1.0 - p) + 1e-12
        hess = np.array(
            [[np.sum(w * m * m) + 1e-9, np.sum(w * m)], [np.sum(w * m), np.sum(w) + 1e-9]]
        )
        try:
            delta = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            break
        a, b = a - float(delta[0]), b - float(delta[1])
        if float(np.abs(delta).max()) < 1e-9:
            break
    if not (math.isfinite(a) and math.isfinite(b)) or a <= 0:
        return 1.0, 0.0
    return a, b


def _sigmoid(value: float) -> float:
    if value >= 0:
        return 1.0 / (1.0 + math.exp(-value))
    z = math.exp(value)
    return z / (1.0 + z)
