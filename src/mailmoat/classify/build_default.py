"""Build the default model shipped in the package (``make model``).

Usage: ``python -m mailmoat.classify.build_default --corpus ../shared/corpus
--out src/mailmoat/data/model.bin [--selection full|cross-time]``

Contract: reads the corpus archives without unpacking them and trains with
``recipe.build_model``: ``full`` (the default) on every de-duplicated set
(``corpus.DEFAULT_SETS``, 6046 messages), the shipped model;
``cross-time`` on the 2002 spam and part of the ham only
(``recipe.cross_time``), the variant the benchmarks measure on the mail it
never saw. The same corpus and code give a byte-identical file. Exit status
0 on success, 2 if the corpus is missing.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from mailmoat.classify.features import FeatureConfig
from mailmoat.classify.persist import save_file
from mailmoat.classify.recipe import PASSES, SELECTIONS, build_model, load_messages


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--corpus", required=True, help="directory with the corpus archives")
    parser.add_argument("--out", required=True, help="model file to write")
    parser.add_argument("--selection", choices=sorted(SELECTIONS), default="full")
    parser.add_argument("--passes", type=int, default=PASSES, help=f"training passes ({PASSES})")
    parser.add_argument("--hash-bits", type=int, default=FeatureConfig().hash_bits)
    args = parser.parse_args(argv)
    features = FeatureConfig(hash_bits=args.hash_bits)
    started = time.monotonic()
    try:
        messages = load_messages(args.corpus, SELECTIONS[args.selection])
    except FileNotFoundError as exc:
        print(f"build_default: corpus missing: {exc}", file=sys.stderr)
        return 2
    model = build_model(messages, features, passes=args.passes)
    save_file(model, args.out)
    n_spam = sum(1 for sample in messages if sample.is_spam)
    print(
        f"build_default: {args.selection}: {len(messages)} messages ({n_spam} spam), "
        f"{args.passes} passes, calibration a={model.calibration[0]:.3f} "
        f"b={model.calibration[1]:.3f}, {Path(args.out).stat().st_size} bytes, "
        f"{time.monotonic() - started:.1f} s -> {args.out}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
