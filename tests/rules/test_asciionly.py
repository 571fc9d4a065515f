"""The ASCII variant of a regex: the same matches in every ASCII text."""

from __future__ import annotations

import random
import re

import pytest

from mailmoat.rules.asciionly import ascii_variant

PATTERNS = [
    r"(?:^|\s)(?:[pP\xfe]|\xce\xa1|&#112;)(?:[aA@\xe0-\xe5]|\xd0\xb0)[yY\xfd]\b",
    r"(?!pay)(?:[pP\xd1]|\xce\xa1){1,2}[\W_]?(?:[aA]|\xc3[\xa0-\xa5])y",
    r"[\x80-\xff]{2}|pa",
    r"p(?:\xe9|e)?ay",
    r"p(?:\xe9)+ay|ya",
    r"(?<![a\xe9])pay(?=[^\xe9y]|$)",
    r"(?<=\xe9|a)y",
    r"[^\xe9a]{2}y",
    r"(?i:P\xc9?A)Y",
    r"(?:pa|\xe9\xe9)*?y+",
    r"\d[\d\xb2]{0,3}\s*[a-c\x81]",
    r"(?>p|\xe9)a",
]
LETTERS = "pPaAyY@&#112; \t\n_-1234"


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("flags", [re.A, re.A | re.I, re.A | re.M | re.S])
def test_the_variant_matches_exactly_the_same_ascii_texts(pattern: str, flags: int) -> None:
    regex = re.compile(pattern, flags)
    narrowed = ascii_variant(regex)
    rng = random.Random(pattern)
    texts = ["pay", "PAY me", "a pay", "ya", "12 b", "\xe9pay"]
    texts += ["".join(rng.choices(LETTERS, k=rng.randint(0, 12))) for _ in range(1500)]
    matched = 0
    for text in filter(str.isascii, texts):
        expected = regex.search(text) is not None
        matched += expected
        got = narrowed is not None and narrowed.search(text) is not None
        assert got == expected, (text, narrowed and narrowed.pattern)
    if narrowed is not None:
        assert narrowed.flags == flags


def test_the_variant_leaves_out_what_only_non_ascii_text_can_match() -> None:
    narrowed = ascii_variant(re.compile(r"(?:[pP\xfe]|\xce\xa1)(?:[aA@\xe0-\xe5]|\xd0\xb0)y", re.A))
    assert narrowed is not None
    assert narrowed.pattern.isascii() and "\\xce" not in narrowed.pattern
    assert "\\xe0" not in narrowed.pattern and "\\xd0" not in narrowed.pattern


def test_a_regex_only_non_ascii_text_can_match_has_no_variant() -> None:
    assert ascii_variant(re.compile(r"[\x80-\xff]{3}", re.A)) is None
    assert ascii_variant(re.compile(r"a(?:\xe9|\xc3\xa9)b", re.A)) is None


def test_the_regex_itself_when_nothing_narrows_or_it_cannot_be_narrowed() -> None:
    plain = re.compile(r"\bcheap (?:pills|meds)\b", re.A | re.I)
    assert ascii_variant(plain) is plain
    unicode = re.compile(r"[k\u212a]elvin", re.I)  # Unicode folding: the Kelvin sign is k
    assert ascii_variant(unicode) is unicode
    backref = re.compile(r"(\w+|\xe9) \1", re.A)  # a removed group would renumber
    assert ascii_variant(backref) is backref
