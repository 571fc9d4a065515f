"""Evaluation runs over a TREC-style index: online or train/test split.

Contract: ``read_index(path)`` parses lines ``spam PATH`` / ``ham PATH``
(paths relative to the index file; blank lines and ``#`` comments skipped)
and raises ``ValueError`` naming the line for anything else.
``evaluate(items, ...)`` runs a fresh model over them:

* ``online``: TREC's immediate feedback: classify each message in index
  order, then learn its true label; every message is scored.
* ``split``: learn the first ``train_fraction`` (``passes`` times), then
  score the rest without learning.

Scores are model margins (higher = spammier; probabilities saturate and
would tie at the top); the probability is ``sigmoid(margin)`` for a fresh
model. Throughput counts the CPU time of this process (so other load on
the machine does not skew it) for parse + features + score (+ learn,
online) only, not file reading. ``summary`` gives the metrics named as in ``--json``.
"""

from __future__ import annotations

import gc
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mailmoat.classify import metrics
from mailmoat.classify.features import FeatureConfig, extract
from mailmoat.classify.model import Model
from mailmoat.message import parse_message

Progress = Callable[[int, int, float], None]


@dataclass
class EvalResult:
    mode: str
    paths: list[str] = field(default_factory=list)
    labels: list[bool] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    n_train: int = 0
    seconds: float = 0.0

    @property
    def msgs_per_sec(self) -> float:
        return len(self.scores) / self.seconds if self.seconds > 0 else 0.0


def read_index(path: str | Path) -> list[tuple[bool, Path]]:
    index = Path(path)
    base = index.parent
    items: list[tuple[bool, Path]] = []
    for number, line in enumerate(index.read_text(encoding="utf-8").splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        label, _, name = text.partition(" ")
        if label.lower() not in ("spam", "ham") or not name.strip():
            raise ValueError(f"{index}:{number}: expected 'spam PATH' or 'ham PATH'")
        items.append((label.lower() == "spam", base / name.strip()))
    return items


def evaluate(
    items: Sequence[tuple[bool, Path]],
    *,
    mode: str = "split",
    train_fraction: float = 0.5,
    passes: int = 1,
    features: FeatureConfig | None = None,
    progress: Progress | None = None,
) -> EvalResult:
    if mode not in ("online", "split"):
        raise ValueError(f"unknown mode {mode!r}")
    model = Model(features or FeatureConfig())
    result = EvalResult(mode)
    started = time.monotonic()
    if mode == "online":
        _score(model, items, result, learn=True, progress=progress, started=started)
        return result
    n_train = min(len(items), max(0, round(len(items) * train_fraction)))
    result.n_train = n_train
    train = [
        (extract(parse_message(path.read_bytes()), model.features), is_spam)
        for is_spam, path in items[:n_train]
    ]
    for _ in range(passes):
        for indices, is_spam in train:
            model.learn(indices, is_spam)
    # Score as a long-running gateway would: training data gone, the
    # surviving heap frozen so the cyclic GC stops rescanning it.
    del train
    gc.collect()
    gc.freeze()
    _score(model, items[n_train:], result, learn=False, progress=progress, started=started)
    return result


def _score(
    model: Model,
    items: Sequence[tuple[bool, Path]],
    result: EvalResult,
    *,
    learn: bool,
    progress: Progress | None,
    started: float,
) -> None:
    last_report = time.monotonic()
    for done, (is_spam, path) in enumerate(items, 1):
        raw = path.read_bytes()
        t0 = time.process_time()
        indices = extract(parse_message(raw), model.features)
        score = model.margin(indices)
        if learn:
            model.learn(indices, is_spam)
        result.seconds += time.process_time() - t0
        result.paths.append(str(path))
        result.labels.append(is_spam)
        result.scores.append(score)
        now = time.monotonic()
        if progress is not None and now - last_report >= 2.0:
            progress(done, len(items), now - started)
            last_report = now


def summary(result: EvalResult) -> dict[str, float | int]:
    """The figures of ``mailmoat eval --json`` (percentages in percent)."""
    scores, labels = result.scores, result.labels
    probabilities = [_sigmoid(s) for s in scores]
    return {
        "one_minus_auc_pct": metrics.one_minus_auc_pct(scores, labels),
        "lam_pct": metrics.lam_pct(probabilities, labels),
        "fpr_at_99_recall": metrics.fpr_at_recall(scores, labels, 0.99),
        "recall_at_0_1_fpr": metrics.recall_at_fpr(scores, labels, 0.001),
        "msgs_per_sec": result.msgs_per_sec,
        "n_ham": sum(1 for y in labels if not y),
        "n_spam": sum(1 for y in labels if y),
    }


def stderr_progress(done: int, total: int, elapsed: float) -> None:
    rate = done / elapsed if elapsed > 0 else 0.0
    print(f"eval: {done}/{total} messages, {rate:.0f} msgs/s", file=sys.stderr, flush=True)


def _sigmoid(value: float) -> float:
    return 1.0 / (1.0 + math.exp(-value)) if value >= 0 else 1.0 - 1.0 / (1.0 + math.exp(value))
