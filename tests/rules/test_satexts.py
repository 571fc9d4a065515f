"""The SpamAssassin texts: the body lines' whitespace is that of ``\\s``."""

from __future__ import annotations

import random
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


def test_received_searches_from_their_first_literal_find_what_a_full_search_finds() -> None:
    rng = random.Random(12)
    pieces = [
        " ", "\t", "id", "ID", "Id", "xid", "helo", "HELO", "Helo", "=", "with", "WITH", "wITh",
        "ESMTPSA", "esmtpa", "LMTPA", "asmtp", "(authenticated", "(Authenticated", "a", "1",
        ";", ">", "<", ")", "]", "\xe9", "\xff", "smtp", "x",
    ]  # fmt: skip
    cases = [
        (satexts._HELO, satexts._HELO_STARTS, False),
        (satexts._ID, satexts._ID_STARTS, True),
        (satexts._AUTH, satexts._AUTH_STARTS, True),
    ]
    found = 0
    for _ in range(20000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 10)))
        for regex, starts, folded in cases:
            expected = regex.search(text)
            got = satexts._search_from(regex, text, starts, folded)
            assert (got and (got.span(), got.groups())) == (
                expected and (expected.span(), expected.groups())
            ), (regex.pattern, text)
            found += expected is not None
    assert found > 5000  # the texts do hold matches
