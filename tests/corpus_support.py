"""The shared SpamAssassin corpus for tests that read it.

``require_corpus()`` is its directory (``find_corpus``: ``$MAILMOAT_CORPUS``
or ``../shared/corpus``); when it is missing the test skips, and fails under
``CI=true``, where the corpus must be present.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mailmoat.classify.corpus import find_corpus


def require_corpus() -> Path:
    """The corpus directory; skip (fail under CI=true) when it is missing."""
    root = find_corpus(Path(__file__).resolve())
    if root is None:
        message = "shared corpus not found (set MAILMOAT_CORPUS or provide ../shared/corpus)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return root
