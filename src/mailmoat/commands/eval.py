"""``mailmoat eval INDEX``: measure the classifier on labelled mail.

INDEX is a TREC spam-track index: one ``spam PATH`` or ``ham PATH`` line
per message, paths relative to the index file. ``--mode online`` (TREC's
immediate feedback) or ``split`` (learn the first ``--train-fraction``,
score the rest) with a fresh model of ``classifier.hash_bits``.

``--feedback trec``: only labels written in lower case (``spam``, ``ham``)
are learned, capitalised ones (``Spam``, ``Ham``) are scored but never
learned (TREC 2007's delayed and partial feedback); ``immediate`` (the
default) learns every label. ``--autolearn``: messages whose label is not
learned go through the gateway's data-stage checks (store in memory; SPF
left out, as a stored message does not say which client sent it; the
classifier's own symbol comes from the model under evaluation) and the
autolearn guard (``mailmoat.classify.autolearn``), and are learned with the
label it gives, if any.

Prints (1-AUC)%, lam%, the false positive rate at 99% spam recall, spam
recall at 0.1% false positives (all in percent) and messages per second;
writes ``results.txt`` (path, true label, predicted label, margin,
probability; tab-separated) and ``roc.png`` into ``--out`` (the plot needs
the optional extra ``mailmoat[eval]``, matplotlib; without it, a note). With
``--json`` the summary is also one JSON object on the last line of stdout.
Progress goes to stderr. Exit status 2 for an unreadable index.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import math
import sys
from pathlib import Path

from mailmoat.checks.base import Services
from mailmoat.checks.classifier import curve_score
from mailmoat.checks.registry import build_checks
from mailmoat.classify.autolearn import judge
from mailmoat.classify.evaluate import (
    EvalResult,
    evaluate,
    read_index,
    stderr_progress,
    summary,
)
from mailmoat.classify.features import FeatureConfig
from mailmoat.classify.metrics import roc_points
from mailmoat.config import Config, load_config
from mailmoat.core.symbols import Stage, Symbol
from mailmoat.core.transaction import Session, Transaction
from mailmoat.pipeline import Pipeline
from mailmoat.runtime import build_services
from mailmoat.smtp.content import normalize_line_ends

# Checks whose evidence a stored message cannot give, or that the model under
# evaluation replaces.
_NOT_FOR_EVAL = frozenset({"classifier", "spf"})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("index", metavar="INDEX", help="index file: 'spam PATH' / 'ham PATH' lines")
    parser.add_argument("--mode", choices=("online", "split"), default="split")
    parser.add_argument("--train-fraction", type=float, default=0.5, metavar="F")
    parser.add_argument("--passes", type=int, default=1, help="training passes in split mode")
    parser.add_argument("--out", default="var/eval", metavar="DIR", help="results directory")
    parser.add_argument("--json", action="store_true", help="JSON summary on the last line")
    parser.add_argument("--config", help="TOML config file (classifier.hash_bits)")
    parser.add_argument(
        "--feedback",
        choices=("immediate", "trec"),
        default="immediate",
        help="trec: learn lower-case labels only, score capitalised ones",
    )
    parser.add_argument(
        "--autolearn", action="store_true", help="learn unlabelled mail the autolearn guard passes"
    )


class PipelineAutolearn:
    """The gateway's data-stage evidence plus the model's own symbol, judged
    by the autolearn guard: True (spam), False (ham) or None."""

    def __init__(self, config: Config) -> None:
        memory = dataclasses.replace(config.store, url="sqlite:///:memory:")
        self.config = dataclasses.replace(config, store=memory)
        self.runner = asyncio.Runner()
        self.services: Services = self.runner.run(build_services(self.config))
        checks = [c for c in build_checks(self.services) if c.name not in _NOT_FOR_EVAL]
        self.pipeline = Pipeline(self.services, checks)

    def __call__(self, raw: bytes, probability: float) -> bool | None:
        tx = Transaction(
            Session(client_ip="127.0.0.1", front="eval"), data=normalize_line_ends(raw)
        )
        self.runner.run(self.pipeline.run(Stage.DATA, tx))
        verdict = judge(
            [*tx.all_symbols, *self._classifier_symbol(probability)], self.config.classifier
        )
        return None if verdict.label is None else verdict.label == "spam"

    def _classifier_symbol(self, probability: float) -> list[Symbol]:
        settings = self.config.classifier
        if probability >= settings.spam_threshold:
            score = curve_score(settings.spam_curve, probability)
            return [self.pipeline.rescored("BAYES_SPAM", round(score, 2))]
        if probability <= settings.ham_threshold:
            score = curve_score(settings.ham_curve, probability)
            return [self.pipeline.rescored("BAYES_HAM", round(score, 2))]
        return []

    def close(self) -> None:
        if self.services.store is not None:
            self.runner.run(self.services.store.close())
        self.runner.close()


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    try:
        items = read_index(args.index)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        print(f"mailmoat eval: {exc}", file=sys.stderr)
        return 2
    if not 0.0 < args.train_fraction < 1.0 and args.mode == "split":
        print("mailmoat eval: --train-fraction must be between 0 and 1", file=sys.stderr)
        return 2
    autolearn = PipelineAutolearn(config) if args.autolearn else None
    try:
        result = evaluate(
            items,
            mode=args.mode,
            train_fraction=args.train_fraction,
            passes=args.passes,
            features=FeatureConfig(hash_bits=config.classifier.hash_bits),
            progress=stderr_progress,
            feedback=args.feedback,
            autolearn=autolearn,
        )
    except OSError as exc:
        print(f"mailmoat eval: {exc}", file=sys.stderr)
        return 2
    finally:
        if autolearn is not None:
            autolearn.close()
    figures = summary(result)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    _write_results(result, out / "results.txt")
    plotted = _plot_roc(result, out / "roc.png")
    print(
        f"mode: {result.mode}, trained on {result.n_train}, scored {len(result.scores)} "
        f"({figures['n_ham']} ham, {figures['n_spam']} spam)"
    )
    print(f"(1-AUC)%:                 {figures['one_minus_auc_pct']:.4f}")
    print(f"lam%:                     {figures['lam_pct']:.4f}")
    print(f"FPR at 99% spam recall:   {figures['fpr_at_99_recall']:.3f}%")
    print(f"spam recall at 0.1% FPR:  {figures['recall_at_0_1_fpr']:.2f}%")
    print(f"msgs/s:                   {figures['msgs_per_sec']:.0f}")
    print(
        f"learned: {figures['n_feedback']} from labels ({args.feedback} feedback), "
        f"{figures['n_autolearned']} by autolearn"
    )
    curve = out / "roc.png" if plotted else "not drawn (matplotlib missing)"
    print(f"results: {out / 'results.txt'}, ROC curve: {curve}")
    if args.json:
        print(json.dumps({k: _finite(v) for k, v in figures.items()}, sort_keys=True))
    return 0


def _finite(value: float | int) -> float | int | None:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _write_results(result: EvalResult, path: Path) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for name, is_spam, margin in zip(result.paths, result.labels, result.scores, strict=True):
            probability = 1.0 / (1.0 + math.exp(-max(min(margin, 700.0), -700.0)))
            judged = "spam" if margin >= 0 else "ham"
            truth = "spam" if is_spam else "ham"
            handle.write(f"{name}\t{truth}\t{judged}\t{margin:.6f}\t{probability:.6f}\n")


def _plot_roc(result: EvalResult, path: Path) -> bool:
    """Draw the ROC curve into ``path``; False (and a note on stderr) when
    matplotlib, an optional extra, is not installed."""
    try:
        import matplotlib
    except ImportError:
        print(
            "mailmoat eval: no ROC plot: matplotlib is not installed "
            "(pip install 'mailmoat[eval]'); the figures and results.txt are complete",
            file=sys.stderr,
        )
        return False

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fpr, recall = roc_points(result.scores, result.labels)
    figure, axes = plt.subplots(figsize=(6, 4.5))
    axes.plot(fpr, recall, drawstyle="steps-post")
    axes.set_xscale("symlog", linthresh=0.1)
    axes.set_xlim(0, 100)
    axes.set_xlabel("false positive rate (% of ham)")
    axes.set_ylabel("spam recall (%)")
    axes.set_title(f"mailmoat ROC ({result.mode})")
    axes.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return True
