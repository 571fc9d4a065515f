"""The shared corpus for message tests: unpacked once into a cached temp dir.

Absent corpus: the tests skip locally and fail when CI=true.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from corpus_support import require_corpus
from mailmoat.classify.corpus import all_sets, unpack


@pytest.fixture(scope="session")
def corpus_files() -> list[tuple[bool, Path]]:
    """(is_spam, path) of every message of every archive in the corpus."""
    root = require_corpus()
    cache = Path(tempfile.gettempdir()) / f"mailmoat-corpus-{os.getuid()}"
    return unpack(root, cache, all_sets(root))
