"""Classifier benchmark: mailmoat vs bogofilter vs SpamAssassin Bayes.

Usage (from the repository root)::

    .venv/bin/python bench/classifier/run.py [--corpus ../shared/corpus] [--sa-limit 1000]

The corpus: the five de-duplicated sets of the SpamAssassin public corpus
(``mailmoat.classify.corpus.DEFAULT_SETS``: 20030228 easy_ham, easy_ham_2,
hard_ham, spam, and 20050311 spam_2; 4150 ham + 1896 spam = 6046 messages),
unpacked under ``bench/out/corpus``. Split: the messages sorted by set and
file name, shuffled with ``random.Random(20030228)``; the first half (3023)
is the training set, the second half (3023) the test set. The index
``bench/out/classifier/index.txt`` lists them in that order, so
``mailmoat eval INDEX --mode split`` (train fraction 0.5) uses exactly this
split, and ``--mode online`` the same order.

Each filter learns the training half from scratch and scores the test half:

* mailmoat: ``mailmoat eval`` (one process; parse + features + score time);
* bogofilter: ``bogofilter -d TMP -s/-n -B`` to train, ``-t -B`` with a
  precise terse format to score (one process for all test messages);
* SpamAssassin 4: ``sa-learn`` into a private Bayes db, then one
  ``spamassassin -L --mbox`` run (local tests only, no network) with a
  private site config (``use_bayes 1``, ``bayes_auto_learn 0``) that writes
  the Bayes probability (``_BAYES_``) and the total score into headers. It
  is slow, so it scores a deterministic subsample: every k-th test message,
  at most ``--sa-limit``; the output says how many.

Prints (1-AUC)%, FPR at 99% spam recall, spam recall at 0.1% FPR and
scoring msgs/s for each, as a Markdown table. Throughput is messages per
CPU second of the scoring process (one core; bogofilter and SpamAssassin
include their start-up), so the load of other jobs on the machine does
not distort the comparison. Writes nothing outside
``bench/out`` and a temporary directory.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from mailmoat.classify import metrics
from mailmoat.classify.corpus import DEFAULT_SEED, find_corpus, shuffled, unpack

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "bench" / "out"
Item = tuple[bool, Path]


def child_cpu() -> float:
    """CPU seconds (user + system) used by finished child processes."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def figures(scores: list[float], labels: list[bool], rate: float) -> dict[str, float]:
    return {
        "one_minus_auc_pct": metrics.one_minus_auc_pct(scores, labels),
        "fpr_at_99_recall": metrics.fpr_at_recall(scores, labels, 0.99),
        "recall_at_0_1_fpr": metrics.recall_at_fpr(scores, labels, 0.001),
        "msgs_per_sec": rate,
        "n": len(scores),
    }


def run_mailmoat(index: Path, mode: str) -> tuple[dict[str, float], dict[str, float]]:
    """The eval summary and the margin of every scored message by real path."""
    out = OUT / "classifier" / f"mailmoat-{mode}"
    command = [sys.executable, "-m", "mailmoat", "eval", str(index), "--mode", mode]
    command += ["--out", str(out), "--json"]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    summary["n"] = summary["n_ham"] + summary["n_spam"]
    margins = {}
    for line in (out / "results.txt").read_text().splitlines():
        fields = line.split("\t")
        margins[os.path.realpath(fields[0])] = float(fields[3])
    return dict(summary), margins


def run_bogofilter(
    train: list[Item], test: list[Item], tmp: Path
) -> tuple[dict[str, float], list[float]]:
    db = tmp / "bogofilter"
    db.mkdir()
    for flag, wanted in (("-s", True), ("-n", False)):
        paths = [str(p) for is_spam, p in train if is_spam == wanted]
        subprocess.run(["bogofilter", "-d", str(db), flag, "-B", *paths], check=True)
    command = ["bogofilter", "-d", str(db), "-t", "--terse-format=%1.1c %.12e", "-B"]
    started = child_cpu()
    out = subprocess.run(
        [*command, *(str(p) for _, p in test)], capture_output=True, text=True, check=False
    ).stdout.split("\n")
    elapsed = child_cpu() - started
    scores = [float(line.split()[1]) for line in out if line.strip()]
    if len(scores) != len(test):
        raise RuntimeError(f"bogofilter scored {len(scores)} of {len(test)} messages")
    return figures(scores, [y for y, _ in test], len(test) / elapsed), scores


SA_CONFIG = """\
use_bayes 1
bayes_auto_learn 0
bayes_path {db}/bayes
use_auto_whitelist 0
lock_method flock
report_safe 0
clear_headers
add_header all Bayes _BAYES_
add_header all Score _SCORE_
"""


def sa_sample(test: list[Item], limit: int) -> list[int]:
    """Positions of the deterministic SpamAssassin subsample of ``test``."""
    step = max(1, math.ceil(len(test) / limit)) if limit else 1
    return list(range(0, len(test), step))


def run_spamassassin(
    train: list[Item], test: list[Item], tmp: Path, limit: int
) -> tuple[dict[str, float], dict[str, float]]:
    site = tmp / "sa-site"
    site.mkdir()
    for pre in Path("/etc/spamassassin").glob("*.pre"):
        shutil.copy(pre, site / pre.name)
    (site / "local.cf").write_text(SA_CONFIG.format(db=tmp / "sa-db"))
    (tmp / "sa-db").mkdir()
    base = ["--siteconfigpath", str(site)]
    for flag, wanted in (("--spam", True), ("--ham", False)):
        paths = [str(p) for is_spam, p in train if is_spam == wanted]
        subprocess.run(["sa-learn", *base, flag, *paths], check=True, capture_output=True)
    sample = [test[i] for i in sa_sample(test, limit)]
    mbox = tmp / "sa-test.mbox"
    with mbox.open("wb") as handle:
        for number, (_, path) in enumerate(sample):
            raw = path.read_bytes()
            if raw.startswith(b"From "):
                raw = raw.split(b"\n", 1)[1]
            raw = re.sub(rb"(?m)^(>*From )", rb">\1", raw)
            # SpamAssassin's mbox mode reorders messages (by date): tag them.
            handle.write(b"From bench@localhost Thu Jan  1 00:00:00 1970\n")
            handle.write(b"X-Bench-Id: %d\n" % number + raw + b"\n")
    command = ["spamassassin", "-L", "--siteconfigpath", str(site), "--mbox", str(mbox)]
    started = child_cpu()
    output = subprocess.run(command, capture_output=True, check=True).stdout
    elapsed = child_cpu() - started
    bayes: dict[int, float] = {}
    total: dict[int, float] = {}
    for message in re.split(rb"\nFrom bench@localhost ", output):
        head = message.split(b"\n\n", 1)[0]
        tag = re.search(rb"(?m)^X-Bench-Id: (\d+)", head)
        probability = re.search(rb"(?m)^X-Spam-Bayes: ([0-9.]+)", head)
        score = re.search(rb"(?m)^X-Spam-Score: (-?[0-9.]+)", head)
        if tag and probability and score:
            bayes[int(tag.group(1))] = float(probability.group(1))
            total[int(tag.group(1))] = float(score.group(1))
    if len(bayes) != len(sample):
        raise RuntimeError(f"spamassassin scored {len(bayes)} of {len(sample)}")
    labels = [y for y, _ in sample]
    rate = len(sample) / elapsed
    order = range(len(sample))
    return (
        figures([bayes[i] for i in order], labels, rate),
        figures([total[i] for i in order], labels, rate),
    )


def table(rows: list[tuple[str, dict[str, float]]]) -> str:
    lines = [
        "| filter | test msgs | (1-AUC)% | FPR at 99% recall | recall at 0.1% FPR | msgs/s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, f in rows:
        lines.append(
            f"| {name} | {int(f['n'])} | {f['one_minus_auc_pct']:.4f} | "
            f"{f['fpr_at_99_recall']:.2f}% | {f['recall_at_0_1_fpr']:.2f}% | "
            f"{f['msgs_per_sec']:.0f} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description="mailmoat vs bogofilter vs SpamAssassin")
    parser.add_argument("--corpus", help="corpus directory (default: ../shared/corpus)")
    parser.add_argument("--sa-limit", type=int, default=1000, help="SA test messages (0: all)")
    parser.add_argument("--skip-sa", action="store_true", help="leave SpamAssassin out")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="shuffle seed")
    args = parser.parse_args()
    corpus = Path(args.corpus) if args.corpus else find_corpus(ROOT)
    if corpus is None:
        print("bench: corpus not found", file=sys.stderr)
        return 2
    items = shuffled(unpack(corpus, OUT / "corpus"), args.seed)
    half = len(items) // 2
    train, test = items[:half], items[half:]
    index = OUT / "classifier" / "index.txt"
    index.parent.mkdir(parents=True, exist_ok=True)
    index.write_text(
        "".join(f"{'spam' if s else 'ham'} {os.path.relpath(p, index.parent)}\n" for s, p in items)
    )
    print(f"corpus: {len(items)} messages, train {len(train)}, test {len(test)}", file=sys.stderr)
    split, margins = run_mailmoat(index, "split")
    rows = [("mailmoat (split)", split)]
    with tempfile.TemporaryDirectory(prefix="mailmoat-bench-") as name:
        tmp = Path(name)
        bogo, bogo_scores = run_bogofilter(train, test, tmp)
        rows.append(("bogofilter 1.2.5", bogo))
        if not args.skip_sa:
            bayes, total = run_spamassassin(train, test, tmp, args.sa_limit)
            # The same subsample scored by the other two, for a like-for-like row.
            positions = sa_sample(test, args.sa_limit)
            labels = [test[i][0] for i in positions]
            ours = [margins[os.path.realpath(test[i][1])] for i in positions]
            theirs = [bogo_scores[i] for i in positions]
            rows.append(
                ("mailmoat (split, SA sample)", figures(ours, labels, split["msgs_per_sec"]))
            )
            rows.append(("bogofilter (SA sample)", figures(theirs, labels, bogo["msgs_per_sec"])))
            rows.append(("SpamAssassin 4.0.1 Bayes (SA sample)", bayes))
            rows.append(("SpamAssassin 4.0.1 -L score (SA sample)", total))
    online, _ = run_mailmoat(index, "online")
    rows.append((f"mailmoat (online, all {len(items)})", online))
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
