"""Evaluation runs over a TREC-style index: online or train/test split.

Contract: ``read_index(path)`` parses lines ``spam PATH`` / ``ham PATH``
(paths relative to the index file; blank lines and ``#`` comments skipped)
into ``IndexEntry`` values and raises ``ValueError`` naming the line for
anything else. A label in lower case (``spam``, ``ham``) gives feedback; in
any other case (``Spam``, ``Ham``: TREC 2007's delayed and partial feedback
convention) it is the truth for scoring only.
``evaluate(items, ...)`` runs a fresh model over them:

* ``online``: classify each message in index order, then learn its true
  label: every label with ``feedback="immediate"`` (TREC's immediate
  feedback), only the lower-case ones with ``feedback="trec"``; every
  message is scored.
* ``split``: learn the first ``train_fraction`` (``passes`` times; with
  ``feedback="trec"`` only its lower-case labels), then score the rest
  without learning.

With ``autolearn`` (a callable: raw message and the model's spam
probability in, True/False/None out, see ``mailmoat eval --autolearn``)
every message whose label is not learned as feedback may be learned with
the label the callable gives, after it was scored: mail an administrator
labelled is never autolearned. ``n_feedback``/``n_autolearned`` count the
messages learned each way (a learn step that left the model unchanged,
train on error, still counts).

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
from typing import NamedTuple

from mailmoat.classify import metrics
from mailmoat.classify.features import FeatureConfig, IndexArray, extract
from mailmoat.classify.model import Model
from mailmoat.message import parse_message

Progress = Callable[[int, int, float], None]
# Raw message and the model's spam probability -> True (spam), False (ham)
# or None (do not learn).
Autolearn = Callable[[bytes, float], bool | None]
FEEDBACK = ("immediate", "trec")


class IndexEntry(NamedTuple):
    is_spam: bool
    path: Path
    # The label was written in lower case: learned under TREC feedback.
    feedback: bool = True


@dataclass
class EvalResult:
    mode: str
    paths: list[str] = field(default_factory=list)
    labels: list[bool] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    n_train: int = 0
    seconds: float = 0.0
    n_feedback: int = 0
    n_autolearned: int = 0

    @property
    def msgs_per_sec(self) -> float:
        return len(self.scores) / self.seconds if self.seconds > 0 else 0.0


def read_index(path: str | Path) -> list[IndexEntry]:
    index = Path(path)
    base = index.parent
    items: list[IndexEntry] = []
    for number, line in enumerate(index.read_text(encoding="utf-8").splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        label, _, name = text.partition(" ")
        if label.lower() not in ("spam", "ham") or not name.strip():
            raise ValueError(f"{index}:{number}: expected 'spam PATH' or 'ham PATH'")
        items.append(IndexEntry(label.lower() == "spam", base / name.strip(), label.islower()))
    return items


def evaluate(
    items: Sequence[IndexEntry],
    *,
    mode: str = "split",
    train_fraction: float = 0.5,
    passes: int = 1,
    features: FeatureConfig | None = None,
    progress: Progress | None = None,
    feedback: str = "immediate",
    autolearn: Autolearn | None = None,
) -> EvalResult:
    if mode not in ("online", "split"):
        raise ValueError(f"unknown mode {mode!r}")
    if feedback not in FEEDBACK:
        raise ValueError(f"unknown feedback {feedback!r}")
    model = Model(features or FeatureConfig())
    result = EvalResult(mode)
    learner = _Learner(model, result, feedback, autolearn)
    started = time.monotonic()
    if mode == "online":
        _score(learner, items, result, learn=True, progress=progress, started=started)
        return result
    n_train = min(len(items), max(0, round(len(items) * train_fraction)))
    result.n_train = n_train
    train = [
        (entry, raw, extract(parse_message(raw), model.features))
        for entry in items[:n_train]
        for raw in (entry.path.read_bytes(),)
    ]
    for number in range(passes):
        for entry, raw, indices in train:
            learner.learn(entry, raw, indices, count=number == 0)
    # Score as a long-running gateway would: training data gone, the
    # surviving heap frozen so the cyclic GC stops rescanning it.
    del train
    gc.collect()
    gc.freeze()
    learn = autolearn is not None
    _score(learner, items[n_train:], result, learn=learn, progress=progress, started=started)
    return result


class _Learner:
    """Who teaches the model what: feedback labels, else autolearn."""

    def __init__(
        self, model: Model, result: EvalResult, feedback: str, autolearn: Autolearn | None
    ) -> None:
        self.model = model
        self.result = result
        self.trec = feedback == "trec"
        self.autolearn = autolearn
        # An autolearn verdict per message, asked once (split mode's passes).
        self._verdicts: dict[Path, bool | None] = {}

    def gives_feedback(self, entry: IndexEntry) -> bool:
        return entry.feedback or not self.trec

    def learn(self, entry: IndexEntry, raw: bytes, indices: IndexArray, *, count: bool) -> None:
        if self.gives_feedback(entry):
            self.model.learn(indices, entry.is_spam)
            self.result.n_feedback += count
            return
        if self.autolearn is None:
            return
        if entry.path not in self._verdicts:
            self._verdicts[entry.path] = self.autolearn(raw, self.model.probability(indices))
        verdict = self._verdicts[entry.path]
        if verdict is not None:
            self.model.learn(indices, verdict)
            self.result.n_autolearned += count

    def autolearn_only(self, entry: IndexEntry, raw: bytes, indices: IndexArray) -> None:
        """After scoring in split mode: no feedback, autolearn may still learn."""
        if self.autolearn is None:
            return
        verdict = self.autolearn(raw, self.model.probability(indices))
        if verdict is not None:
            self.model.learn(indices, verdict)
            self.result.n_autolearned += 1


def _score(
    learner: _Learner,
    items: Sequence[IndexEntry],
    result: EvalResult,
    *,
    learn: bool,
    progress: Progress | None,
    started: float,
) -> None:
    model = learner.model
    last_report = time.monotonic()
    for done, entry in enumerate(items, 1):
        raw = entry.path.read_bytes()
        t0 = time.process_time()
        indices = extract(parse_message(raw), model.features)
        score = model.margin(indices)
        result.seconds += time.process_time() - t0
        if learn and result.mode == "online" and learner.gives_feedback(entry):
            t0 = time.process_time()
            learner.learn(entry, raw, indices, count=True)
            result.seconds += time.process_time() - t0
        elif learn and result.mode == "online":
            # Autolearn's own evidence (the pipeline's checks) is not timed.
            learner.learn(entry, raw, indices, count=True)
        elif learn:
            learner.autolearn_only(entry, raw, indices)
        result.paths.append(str(entry.path))
        result.labels.append(entry.is_spam)
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
        "n_feedback": result.n_feedback,
        "n_autolearned": result.n_autolearned,
    }


def stderr_progress(done: int, total: int, elapsed: float) -> None:
    rate = done / elapsed if elapsed > 0 else 0.0
    print(f"eval: {done}/{total} messages, {rate:.0f} msgs/s", file=sys.stderr, flush=True)


def _sigmoid(value: float) -> float:
    return 1.0 / (1.0 + math.exp(-value)) if value >= 0 else 1.0 - 1.0 / (1.0 + math.exp(value))
