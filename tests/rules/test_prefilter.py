"""The literal prefilter: required and leading literals, case folding."""

from __future__ import annotations

import re

import pytest

from mailmoat.rules import (
    FOLDS_TO_ASCII,
    fold,
    fold_for_literals,
    leading_literals,
    required_literals,
)


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (r"(?i)\b(?:viagra|cialis)\b", ((("cialis", "viagra"),), True)),
        (
            r"(?i)\b(?:lottery|jackpot)\b.{0,80}\b(?:winner|prize)",
            ((("jackpot", "lottery"), ("prize", "winner")), True),
        ),
        (r"^X-Mailer: Bulk", ((("X-Mailer: Bulk",),), False)),
        (r"(?i:Free) money", (((" money",), ("free",)), True)),
        (r"(?i)opt[- ]out", ((("opt out", "opt-out"),), True)),  # small classes expand
        (r"abc?de", ((("ab",),), False)),  # an optional literal ends the run
        (r"x(?:abc|)", ((("x",),), False)),  # an empty branch requires nothing
        (r"(?:abcd)+xyz", ((("abcd",), ("xyz",)), False)),
        (r"[a-z]+\d", ((), False)),  # classes only: no literals
        (r"(?!spam)\w+", ((), False)),  # lookarounds are never read
        (r"(?i)straße", ((("strasse",),), True)),  # folded: ß is ss
        (r"(?i)café", ((), True)),  # folded literals must be ASCII
    ],
)
def test_required_literals(
    pattern: str, expected: tuple[tuple[tuple[str, ...], ...], bool]
) -> None:
    assert required_literals(re.compile(pattern)) == expected


@pytest.mark.parametrize(
    ("pattern", "folded", "expected"),
    [
        (r"(?i)\b(?:viagra|cialis)\b", True, ("cialis", "viagra")),
        (r"(?i)\b(?:bitcoin|btc)\b", True, ("bitcoin", "btc")),
        (r"^X-Mailer: Bulk", False, ("X-Mailer: Bulk",)),
        (r"(?i)opt[- ]out", True, ("opt out", "opt-out")),
        (r"(?=foo)barbaz", False, ("barbaz",)),  # zero width first: skipped
        (r"abcd|abcde", False, ("abcd",)),  # "abcde" starts where "abcd" does
        (r"(?:abcd)+xyz", False, ("abcd",)),
        (r"immediate(?:ly)? action", False, ("immediate",)),
        (r"a*bcd", False, ()),  # an optional start
        (r"(?:abc|)xyz", False, ()),  # an empty branch
        (r"<[^>]*style", False, ()),  # too short
        (r"(?i)caf\u00e9", True, ()),  # folded literals must be ASCII
        (r"caf\u00e9", False, ("caf\u00e9",)),
    ],
)
def test_leading_literals(pattern: str, folded: bool, expected: tuple[str, ...]) -> None:
    assert leading_literals(re.compile(pattern), folded) == expected


def test_folds_to_ascii_is_complete() -> None:
    chars = (chr(c) for c in range(0x80, 0x110000) if not 0xD800 <= c < 0xE000)
    assert "".join(c for c in chars if any(f.isascii() for f in fold(c))) == FOLDS_TO_ASCII


@pytest.mark.parametrize(
    "text",
    [
        "Plain ASCII, MIXED case",
        "Caf\u00e9 \u00c0 la CARTE, na\u00efve",  # Latin-1
        "It\u2019s \u201cFREE\u201d \u2014 \u20ac100 \u4e2d\u6587 \U0001f600 ok",  # wider
        "STRA\u00dfE \ufb01le \u212aELVIN \u0130STANBUL",  # characters that fold to ASCII
    ],
)
def test_fold_for_literals_keeps_ascii_occurrences(text: str) -> None:
    folded, cheap = fold(text), fold_for_literals(text)
    words = {folded[i:j] for i in range(len(folded)) for j in range(i + 1, len(folded) + 1)}
    assert all(w in cheap for w in words if w.isascii())
    if len(folded) == len(text):
        assert len(cheap) == len(text)
        assert all(a == b for a, b in zip(folded, cheap, strict=True) if a.isascii())
