"""The SpamAssassin public corpus as shipped in ../shared/corpus.

Contract: ``iter_archive_messages(corpus_dir)`` yields (set name, is_spam,
member name, raw bytes) straight from the ``.tar.xz`` archives of
``DEFAULT_SETS``, in archive order then member-name order, skipping the
``cmds`` files; ``unpack(corpus_dir, dest)`` extracts the same sets into
``dest/<set>/`` once (a marker file records completion) and returns
(is_spam, path) pairs in the same order. ``shuffled`` orders any sequence
deterministically from a seed. Missing archives raise ``FileNotFoundError``.
``find_corpus`` locates the corpus (``$MAILMOAT_CORPUS`` or the
``../shared/corpus`` beside the checkout), ``all_sets`` lists every archive.

The sets are the usual de-duplicated selection (see the corpus README):
easy_ham, easy_ham_2 and hard_ham (4150 ham), spam and the 2005 spam_2
(1896 spam), 6046 messages.
"""

from __future__ import annotations

import os
import random
import tarfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

DEFAULT_SETS: tuple[tuple[str, bool], ...] = (
    ("20030228_easy_ham", False),
    ("20030228_easy_ham_2", False),
    ("20030228_hard_ham", False),
    ("20030228_spam", True),
    ("20050311_spam_2", True),
)
DEFAULT_SEED = 20030228


def find_corpus(start: str | Path | None = None) -> Path | None:
    """The shared corpus directory: ``$MAILMOAT_CORPUS``, else
    ``../shared/corpus`` next to the repository, None when absent."""
    candidates = [os.environ.get("MAILMOAT_CORPUS", "")]
    here = Path(start) if start else Path(__file__).resolve()
    candidates += [str(folder / ".." / "shared" / "corpus") for folder in (here, *here.parents)]
    for candidate in candidates:
        if candidate and any(archive_dir(candidate).glob("*.tar.xz")):
            return Path(candidate).resolve()
    return None


def all_sets(corpus_dir: str | Path) -> list[tuple[str, bool]]:
    """Every archive in the corpus (both spam_2 versions included)."""
    names = sorted(p.name.removesuffix(".tar.xz") for p in archive_dir(corpus_dir).glob("*.tar.xz"))
    return [(name, "spam" in name) for name in names]


def archive_dir(corpus_dir: str | Path) -> Path:
    """The directory holding the archives (``corpus_dir`` or its spamassassin/)."""
    root = Path(corpus_dir)
    return root / "spamassassin" if (root / "spamassassin").is_dir() else root


def iter_archive_messages(
    corpus_dir: str | Path, sets: Sequence[tuple[str, bool]] = DEFAULT_SETS
) -> Iterator[tuple[str, bool, str, bytes]]:
    folder = archive_dir(corpus_dir)
    for name, is_spam in sets:
        with tarfile.open(folder / f"{name}.tar.xz", "r:xz") as archive:
            members = sorted(
                (m for m in archive.getmembers() if m.isfile() and _is_message(m.name)),
                key=lambda m: m.name,
            )
            for member in members:
                handle = archive.extractfile(member)
                if handle is not None:
                    yield name, is_spam, member.name, handle.read()


def unpack(
    corpus_dir: str | Path, dest: str | Path, sets: Sequence[tuple[str, bool]] = DEFAULT_SETS
) -> list[tuple[bool, Path]]:
    """Extract the sets under ``dest`` (once) and list (is_spam, path)."""
    target = Path(dest)
    result: list[tuple[bool, Path]] = []
    for name, is_spam in sets:
        set_dir = target / name
        marker = set_dir / ".complete"
        if not marker.exists():
            set_dir.mkdir(parents=True, exist_ok=True)
            with tarfile.open(archive_dir(corpus_dir) / f"{name}.tar.xz", "r:xz") as archive:
                archive.extractall(set_dir, filter="data")
            marker.touch()
        files = sorted(p for p in set_dir.rglob("*") if p.is_file() and _is_message(p.name))
        result.extend((is_spam, path) for path in files)
    return result


def shuffled(items: Sequence[T], seed: int = DEFAULT_SEED) -> list[T]:
    """A copy of ``items`` in a pseudo-random order fixed by ``seed``."""
    ordered = list(items)
    random.Random(seed).shuffle(ordered)
    return ordered


def _is_message(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return base != "cmds" and not base.startswith(".")
