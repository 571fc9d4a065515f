"""Build the default model shipped in the package (``make model``).

Usage: ``python -m mailmoat.classify.build_default --corpus ../shared/corpus
--out src/mailmoat/data/model.bin``

Contract: reads the corpus archives (``corpus.DEFAULT_SETS``, 6046
messages) without unpacking them, orders the messages by a fixed seed,
trains with ``training.calibrated_model`` and writes the model. The same
corpus and code give a byte-identical file. Exit status 0 on success, 2 if
the corpus is missing.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from mailmoat.classify.corpus import DEFAULT_SEED, iter_archive_messages, shuffled
from mailmoat.classify.features import FeatureConfig, extract
from mailmoat.classify.persist import save_file
from mailmoat.classify.training import calibrated_model
from mailmoat.message import parse_message


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--corpus", required=True, help="directory with the corpus archives")
    parser.add_argument("--out", required=True, help="model file to write")
    parser.add_argument("--passes", type=int, default=3, help="training passes (3)")
    parser.add_argument("--hash-bits", type=int, default=FeatureConfig().hash_bits)
    args = parser.parse_args(argv)
    features = FeatureConfig(hash_bits=args.hash_bits)
    started = time.monotonic()
    try:
        messages = list(iter_archive_messages(args.corpus))
    except FileNotFoundError as exc:
        print(f"build_default: corpus missing: {exc}", file=sys.stderr)
        return 2
    samples = [
        (extract(parse_message(raw), features), is_spam)
        for _, is_spam, _, raw in shuffled(messages, DEFAULT_SEED)
    ]
    model = calibrated_model(samples, features, passes=args.passes)
    save_file(model, args.out)
    n_spam = sum(1 for _, is_spam in samples if is_spam)
    print(
        f"build_default: {len(samples)} messages ({n_spam} spam), {args.passes} passes, "
        f"calibration a={model.calibration[0]:.3f} b={model.calibration[1]:.3f}, "
        f"{Path(args.out).stat().st_size} bytes, {time.monotonic() - started:.1f} s -> {args.out}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
