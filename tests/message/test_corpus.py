"""The whole shared corpus parses without an exception, quickly."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from mailmoat.message import parse_message

pytestmark = pytest.mark.corpus


def test_whole_corpus_parses(corpus_files: list[tuple[bool, Path]]) -> None:
    assert len(corpus_files) >= 7000
    started = time.monotonic()
    with_text = 0
    for _, path in corpus_files:
        message = parse_message(path.read_bytes())
        assert message.headers, path
        assert message.parts_count >= 1, path
        with_text += bool(message.text or message.html_text)
    assert with_text >= len(corpus_files) * 0.99
    assert time.monotonic() - started < 60
