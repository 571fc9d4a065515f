"""The shared corpus for message tests: unpacked once into a cached temp dir.

Absent corpus: the tests skip locally and fail when CI=true.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from mailmoat.classify.corpus import all_sets, find_corpus, unpack


def require_corpus() -> Path:
    """The corpus directory; skip (fail under CI=true) when it is missing."""
    root = find_corpus(Path(__file__).resolve())
    if root is None:
        message = "shared corpus not found (set MAILMOAT_CORPUS or provide ../shared/corpus)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return root


@pytest.fixture(scope="session")
def corpus_files() -> list[tuple[bool, Path]]:
    """(is_spam, path) of every message of every archive in the corpus."""
    root = require_corpus()
    cache = Path(tempfile.gettempdir()) / f"mailmoat-corpus-{os.getuid()}"
    return unpack(root, cache, all_sets(root))
