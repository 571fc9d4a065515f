"""``mailmoat eval INDEX``: measure the classifier on labelled mail.

INDEX is a TREC spam-track index: one ``spam PATH`` or ``ham PATH`` line
per message, paths relative to the index file. ``--mode online`` (TREC's
immediate feedback) or ``split`` (learn the first ``--train-fraction``,
score the rest) with a fresh model of ``classifier.hash_bits``.

Prints (1-AUC)%, lam%, the false positive rate at 99% spam recall, spam
recall at 0.1% false positives (all in percent) and messages per second;
writes ``results.txt`` (path, true label, predicted label, margin,
probability; tab-separated) and ``roc.png`` into ``--out``. With
``--json`` the summary is also one JSON object on the last line of stdout.
Progress goes to stderr. Exit status 2 for an unreadable index.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from mailmoat.classify.evaluate import (
    EvalResult,
    evaluate,
    read_index,
    stderr_progress,
    summary,
)
from mailmoat.classify.features import FeatureConfig
from mailmoat.classify.metrics import roc_points
from mailmoat.config import load_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("index", metavar="INDEX", help="index file: 'spam PATH' / 'ham PATH' lines")
    parser.add_argument("--mode", choices=("online", "split"), default="split")
    parser.add_argument("--train-fraction", type=float, default=0.5, metavar="F")
    parser.add_argument("--passes", type=int, default=1, help="training passes in split mode")
    parser.add_argument("--out", default="var/eval", metavar="DIR", help="results directory")
    parser.add_argument("--json", action="store_true", help="JSON summary on the last line")
    parser.add_argument("--config", help="TOML config file (classifier.hash_bits)")


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
    try:
        result = evaluate(
            items,
            mode=args.mode,
            train_fraction=args.train_fraction,
            passes=args.passes,
            features=FeatureConfig(hash_bits=config.classifier.hash_bits),
            progress=stderr_progress,
        )
    except OSError as exc:
        print(f"mailmoat eval: {exc}", file=sys.stderr)
        return 2
    figures = summary(result)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    _write_results(result, out / "results.txt")
    _plot_roc(result, out / "roc.png")
    print(
        f"mode: {result.mode}, trained on {result.n_train}, scored {len(result.scores)} "
        f"({figures['n_ham']} ham, {figures['n_spam']} spam)"
    )
    print(f"(1-AUC)%:                 {figures['one_minus_auc_pct']:.4f}")
    print(f"lam%:                     {figures['lam_pct']:.4f}")
    print(f"FPR at 99% spam recall:   {figures['fpr_at_99_recall']:.3f}%")
    print(f"spam recall at 0.1% FPR:  {figures['recall_at_0_1_fpr']:.2f}%")
    print(f"msgs/s:                   {figures['msgs_per_sec']:.0f}")
    print(f"results: {out / 'results.txt'}, ROC curve: {out / 'roc.png'}")
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


def _plot_roc(result: EvalResult, path: Path) -> None:
    import matplotlib

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
