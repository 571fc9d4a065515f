"""The superset of a large regex: every match of the regex is one of it."""

from __future__ import annotations

import random
import re

import pytest

from mailmoat.rules import engine
from mailmoat.rules.approx import line_exact, superset
from servers import in_ci

# A ReplaceTags-style rule: each letter an alternation of look-alikes
# (characters, UTF-8 sequences, entities of varying length).
P = r"(?:[pP\xfe]|\xce\xa1|\xcf[\x81\xb7]|&#(?:8(?:0|48)|112);)"
A = r"(?:[aA@4\xe0-\xe5]|\xd0[\x90\xb0]|&#(?:97|1072|x430);)"
Y = r"(?:[yY\xfd\xff]|\xd1\x83|&#(?:121|x443);)"
FUZZY = re.compile(rf"(?:^|\s)(?:{P}{A}{Y}\s+m[e3]|{P}{A}{Y}(?:ment|day))(?:$|\W)", re.I | re.A)
SAMPLES = [
    "pay me now",
    "please PAY ME",
    "\xce\xa1&#1072;\xd1\x83 m3!",
    "&#112;@y me",
    "payday loans",
    "repay me",
    "pa y me",
    "p\xe4y me",
    "nothing here",
]
LETTERS = "pPaAyYmM3e@4 \xce\xa1\xd0\xb0\xd1\x83&#1270x;!."


def test_superset_matches_wherever_the_regex_does() -> None:
    wider = superset(FUZZY)
    assert wider is not None
    rng = random.Random(12)
    texts = SAMPLES + ["".join(rng.choices(LETTERS, k=rng.randint(1, 14))) for _ in range(20000)]
    matched = 0
    for text in texts:
        if FUZZY.search(text):
            matched += 1
            assert wider.search(text), text
    assert matched >= 4
    assert not wider.search("nothing here")  # still selective


def test_superset_keeps_flags_and_refuses_backreferences() -> None:
    wider = superset(re.compile(r"\bcheap (?:pills|meds)", re.I))
    assert wider is not None and wider.flags & re.I
    assert wider.search("CHEAP MEDS")
    assert superset(re.compile(r"(\w+) \1")) is None


@pytest.mark.skipif(not engine.available() and not in_ci(), reason="hyperscan not installed")
def test_prefilter_takes_a_pattern_too_large_for_hyperscan_through_its_superset() -> None:
    letter = "(?:" + "|".join(f"&#{n};" for n in range(1000, 1800)) + "|[xX])"
    huge = re.compile(rf"(?:^|\s){letter}{letter}{letter}{letter}\b", re.A)
    assert len(huge.pattern) > 20000
    prefilter = engine.Prefilter([(7, huge)])
    assert prefilter.accepted == {7}
    assert prefilter.scan(b"a xxxx b") == {7}
    assert prefilter.scan(b"nothing") == set()


LINE_PATTERNS = [
    (r"foo\s+bar", re.A),
    (r"^bar baz$", re.A),
    (r"foo.bar", re.A | re.S),
    (r"[^x]{3}bar", re.A),
    (r"\bbar\b", re.A | re.I),
    (r"(?i:FOO)\W+bar", re.A),
    (r"^\s+$", re.A),  # a last line of spaces: Hyperscan alone misses some
    (r"^ ?x$", re.A),
    (r"bar\s*$", re.A),
]


@pytest.mark.skipif(not engine.available() and not in_ci(), reason="hyperscan not installed")
@pytest.mark.parametrize(("pattern", "flags"), LINE_PATTERNS)
def test_line_exact_decides_over_joined_lines_as_re_does_line_by_line(
    pattern: str, flags: int
) -> None:
    regex = re.compile(pattern, flags)
    decided = engine.Prefilter([(1, regex)], lines=True)
    assert decided.accepted == {1}
    rng = random.Random(pattern)
    words = ["foo", "bar", "baz", "FOO", "x", " ", "\t", "-", ""]
    for _ in range(3000):
        found = [" ".join(rng.choices(words, k=rng.randint(0, 4))) for _ in range(3)]
        expected = any(regex.search(line) for line in found)
        got = decided.scan("\n".join(found).encode("latin-1")) == {1}
        assert got == expected, found


def test_line_exact_refuses_what_joining_would_change() -> None:
    assert line_exact(re.compile(r"foo(?=bar)", re.A)) is None  # look-around
    assert line_exact(re.compile(r"\Afoo", re.A)) is None  # string anchor
    assert line_exact(re.compile(r"(a)\1", re.A)) is None  # back-reference
    assert line_exact(re.compile(r"foo")) is None  # Unicode classes and case


@pytest.mark.skipif(not engine.available() and not in_ci(), reason="hyperscan not installed")
def test_patterns_that_may_match_an_empty_line_are_not_decided_by_the_engine() -> None:
    for nullable in (r"^\s*$", r"^$", r"x*"):  # Hyperscan misses some: re confirms them
        assert engine.Prefilter([(1, re.compile(nullable, re.A))], lines=True).accepted == set()
