"""The ASCII variant of a regex: the same matches in every ASCII text."""

from __future__ import annotations

import pickle
import random
import re
from pathlib import Path

import pytest

from authfakes import make_tx
from mailmoat.rules import engine
from mailmoat.rules.asciionly import ascii_variant
from mailmoat.rules.loading import order_metas
from mailmoat.rules.matcher import RuleSet
from mailmoat.rules.sa import load_sa
from servers import in_ci

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


FUZZY_RULES = r"""
body   F_PAY     /(?:^|\s)(?:[pP\xfe]|\xce\xa1)(?:[aA@]|\xd0\xb0)(?:[yY]|\xd1\x83)\s+me\b/
body   F_CAFE    /caf(?:e|\xc3\xa9|\xe9)\b/i
body   F_ONLY8   /\xc3\xa9t\xc3\xa9/
body   __F_COUNT /(?:[pP]|\xce\xa1)ay/
tflags __F_COUNT multiple maxhits=4
rawbody R_CAFE   /caf(?:e|\xc3\xa9)/
header H_SUBJ    Subject =~ /(?:[pP]|\xce\xa1)ay/
"""
BODY_LINES = [
    "pay me now",
    "\xce\xa1\xd0\xb0\xd1\x83 me please",
    "a caf\xc3\xa9 and a cafe",
    "\xc3\xa9t\xc3\xa9 pay pay",
    "nothing",
    "\xce\xa1ay day, pay day",
]


@pytest.mark.skipif(not engine.available() and not in_ci(), reason="hyperscan not installed")
def test_prefilter_scans_ascii_data_with_its_narrowed_databases() -> None:
    pay = re.compile(r"(?:[pP\xfe]|\xce\xa1)(?:[aA@]|\xd0\xb0)y", re.A)
    only8 = re.compile(r"\xc3\xa9t\xc3\xa9", re.A)
    prefilter = engine.Prefilter([(1, pay), (2, only8)], lines=True)
    assert prefilter.accepted == {1, 2}
    assert prefilter.ascii_databases is not prefilter.databases
    assert [ids for _, ids in prefilter.ascii_databases] == [[1]]  # F_ONLY8 cannot match
    assert prefilter.scan(b"a pay b") == {1}
    assert prefilter.scan(b"nothing") == set()
    assert prefilter.scan("\xce\xa1\xd0\xb0y \xc3\xa9t\xc3\xa9".encode("latin-1")) == {1, 2}
    again = pickle.loads(pickle.dumps(prefilter))
    assert again.scan(b"a pay b") == {1} and again.scan("\xc3\xa9t\xc3\xa9".encode("latin-1")) == {
        2
    }


@pytest.mark.skipif(not engine.available() and not in_ci(), reason="hyperscan not installed")
def test_mixed_ascii_and_non_ascii_lines_give_the_pure_python_hits(tmp_path: Path) -> None:
    path = tmp_path / "f.cf"
    path.write_text(FUZZY_RULES, encoding="latin-1")
    loaded = load_sa([(str(path), True)])
    assert loaded.problems == []
    rules = order_metas(dict(loaded.rules), [])
    with_engine, pure = RuleSet(rules, use_engine=True), RuleSet(rules, use_engine=False)
    assert with_engine.engine_rules >= 5
    rng = random.Random(3)
    seen: set[str] = set()
    for seed in range(60):
        lines = rng.sample(BODY_LINES, k=rng.randint(1, len(BODY_LINES)))
        if seed % 3 == 0:
            lines = [line for line in lines if line.isascii()] or ["pay me"]
        subject = rng.choice(["pay day", "\xce\xa1ay", "hello"])
        body = "\r\n\r\n".join(lines)
        message = f"Subject: {subject}\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\n"
        tx = make_tx((message + body + "\r\n").encode("latin-1"))
        got = with_engine.match_counts(tx)
        assert got == pure.match_counts(tx), (seed, lines)
        seen.update(rule.name for rule, _ in got)
    assert {"F_PAY", "F_CAFE", "F_ONLY8", "__F_COUNT", "R_CAFE", "H_SUBJ"} <= seen
