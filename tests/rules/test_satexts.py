"""The SpamAssassin texts: the body lines' whitespace is that of ``\\s``."""

from __future__ import annotations

import re
from types import SimpleNamespace

from mailmoat.rules import satexts


def test_str_split_whitespace_is_the_regex_whitespace() -> None:
    # body_lines joins str.split()'s words where SpamAssassin collapses \s+.
    every = "".join(map(chr, range(0xD800))) + "".join(map(chr, range(0xE000, 0x110000)))
    assert set(re.findall(r"\s", every)) == {c for c in every if c.isspace()}


def test_body_lines_collapse_whitespace_runs_per_paragraph() -> None:
    message = SimpleNamespace(
        subject="Hi", text=" one\t two\u00a0\u2003three \n\n  four\x1c five  ", html_text=""
    )
    assert satexts.body_lines(message) == ["Hi", "one two three", "four five"]
