"""The recipe of the shipped model, and its cross-time variant.

Contract: ``build_model(messages, features)`` trains a model on labelled raw
messages exactly as ``make model`` does (fixed-seed order, calibration
fitted on a held-out fold, three passes); the same input gives the same
model. ``load_messages(corpus_dir, sets, keep)`` reads the sets straight
from the corpus archives, keeping the members ``keep(set, member)`` accepts.

Two selections of the corpus use the recipe:

* ``FULL``: every de-duplicated set (``corpus.DEFAULT_SETS``), all of it:
  the shipped default model.
* ``CROSS_TIME``: the variant that proves the recipe generalises: the 2002
  spam (``20030228_spam``) and a fixed ``TRAIN_SHARE`` of each ham set
  (chosen by a hash of the file name, ``in_training_share``). Held back, for
  measurement only: the 2005 spam (``20050311_spam_2``, spam of other
  sources and years the variant never saw) and the rest of the ham
  (``cross_time_heldout``).

Missing archives raise ``FileNotFoundError``.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from mailmoat.classify.corpus import DEFAULT_SEED, DEFAULT_SETS, iter_archive_messages, shuffled
from mailmoat.classify.features import FeatureConfig, extract
from mailmoat.classify.model import Model
from mailmoat.classify.training import calibrated_model
from mailmoat.message import parse_message

# Share of each ham set the cross-time variant trains on (per mille).
TRAIN_SHARE = 600
HAM_SETS: tuple[str, ...] = tuple(name for name, is_spam in DEFAULT_SETS if not is_spam)
CROSS_TIME_TRAIN_SPAM = "20030228_spam"
CROSS_TIME_TEST_SPAM = "20050311_spam_2"
PASSES = 3


@dataclass(frozen=True)
class Sample:
    """One corpus message: its set, member name, label and raw bytes."""

    set_name: str
    member: str
    is_spam: bool
    raw: bytes


Keep = Callable[[str, str], bool]


def in_training_share(member: str) -> bool:
    """Whether a ham file is in the cross-time variant's training share: a
    CRC-32 of its base name, so the split is the same everywhere."""
    base = member.rsplit("/", 1)[-1]
    return zlib.crc32(base.encode()) % 1000 < TRAIN_SHARE


def full(set_name: str, member: str) -> bool:
    """Selection of the shipped model: everything."""
    return True


def cross_time(set_name: str, member: str) -> bool:
    """Selection of the cross-time variant's training messages."""
    if set_name == CROSS_TIME_TRAIN_SPAM:
        return True
    return set_name in HAM_SETS and in_training_share(member)


def cross_time_heldout(set_name: str, member: str) -> bool:
    """The messages the cross-time variant never trains on."""
    if set_name == CROSS_TIME_TEST_SPAM:
        return True
    return set_name in HAM_SETS and not in_training_share(member)


SELECTIONS: dict[str, Keep] = {"full": full, "cross-time": cross_time}


def load_messages(
    corpus_dir: str | Path,
    keep: Keep = full,
    sets: Sequence[tuple[str, bool]] = DEFAULT_SETS,
) -> list[Sample]:
    """The members of ``sets`` that ``keep`` accepts, in archive order."""
    return list(_iter_samples(corpus_dir, keep, sets))


def _iter_samples(
    corpus_dir: str | Path, keep: Keep, sets: Sequence[tuple[str, bool]]
) -> Iterator[Sample]:
    for set_name, is_spam, member, raw in iter_archive_messages(corpus_dir, sets):
        if keep(set_name, member):
            yield Sample(set_name, member, is_spam, raw)


def build_model(
    messages: Sequence[Sample], features: FeatureConfig | None = None, *, passes: int = PASSES
) -> Model:
    """The recipe: messages in a fixed-seed order, calibration fitted on a
    held-out fold (``training.calibrated_model``), ``passes`` passes."""
    config = features or FeatureConfig()
    samples = [
        (extract(parse_message(sample.raw), config), sample.is_spam)
        for sample in shuffled(messages, DEFAULT_SEED)
    ]
    return calibrated_model(samples, config, passes=passes)
