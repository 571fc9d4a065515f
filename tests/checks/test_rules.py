"""Rules engine: kinds, metas, broken rules named by file and line, bundled set."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from authfakes import make_tx, names
from mailmoat.checks.base import Services
from mailmoat.checks.rules import (
    _FOLDS_TO_ASCII,
    _TRIES,
    BODY_LIMIT,
    RuleError,
    RuleSet,
    build,
    evaluate,
    fold,
    fold_for_literals,
    leading_literals,
    load_rules,
    match,
    parse_meta,
    required_literals,
    rule_sources,
)
from mailmoat.config import Config, RulesConfig
from mailmoat.core.symbols import Evidence

RULES = """
[rules.SUBJ_WIN]
header = "Subject"
pattern = '(?i)\\bwin\\b'
score = 1.5
description = "win in subject"

[rules.ANY_HEADER_MAILER]
header = "ALL"
pattern = '^X-Mailer: Bulk'

[rules.BODY_CASH]
body = '(?i)cash prize'
score = 2

[rules.RAW_B64]
rawbody = '(?i)content-transfer-encoding: base64'
score = 0.5

[rules.URI_IP]
uri = '^https?://\\d+\\.\\d+\\.\\d+\\.\\d+'
score = 1

[rules.__HELPER]
body = 'secret'

[rules.META_BOTH]
meta = "SUBJ_WIN && (BODY_CASH || URI_IP) && !__HELPER"
score = 3

[rules.META_OF_META]
meta = "META_BOTH || ANY_HEADER_MAILER"
score = 0.1
"""

BROKEN = """
[rules.GOOD_ONE]
body = 'fine'

[rules.BAD_REGEX]
body = '(unclosed'

[rules.BAD_META]
meta = "GOOD_ONE && (MISSING"

[rules.META_UNKNOWN]
meta = "GOOD_ONE || NOPE"

[rules.CYCLE_A]
meta = "CYCLE_B"

[rules.CYCLE_B]
meta = "CYCLE_A"

[rules.TWO_KINDS]
body = 'a'
uri = 'b'

[rules.lowercase]
body = 'x'

[rules.BAD_SCORE]
body = 'x'
score = "high"

[rules.UNKNOWN_KEY]
body = 'x'
flags = "i"
"""


def hits(rules_text: str, message: bytes) -> dict[str, float]:
    rules, errors = load_rules([("t.toml", rules_text)])
    assert errors == []
    return {r.name: r.score for r in match(rules, make_tx(message))}


def test_every_kind_and_meta() -> None:
    msg = (
        b"From: a@b.test\r\nSubject: You WIN\r\nX-Mailer: Bulk 1.0\r\n\r\n"
        b"Claim your cash prize at http://192.0.2.10/claim\r\n"
    )
    assert hits(RULES, msg) == {
        "SUBJ_WIN": 1.5,
        "ANY_HEADER_MAILER": 1.0,
        "BODY_CASH": 2.0,
        "URI_IP": 1.0,
        "META_BOTH": 3.0,
        "META_OF_META": 0.1,
    }
    assert "META_BOTH" not in hits(RULES, msg.replace(b"cash prize", b"secret cash prize"))
    raw = (
        b'Subject: x\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"eW91ciBjYXNoIHByaXplIGlzIHdhaXRpbmcNCg==\r\n--b--\r\n"
    )
    assert hits(RULES, raw) == {"RAW_B64": 0.5, "BODY_CASH": 2.0}  # body is decoded, raw is not


def test_helpers_are_not_reported() -> None:
    rules, _ = load_rules([("t.toml", RULES)])
    from mailmoat.checks.rules import RulesCheck

    evidence = Evidence()
    asyncio.run(RulesCheck(rules).run(make_tx(b"Subject: x\r\n\r\nsecret\r\n"), evidence))
    assert names(evidence) == {}


def test_broken_rules_are_named_with_line_and_skipped() -> None:
    rules, errors = load_rules([("broken.toml", BROKEN)])
    assert [r.name for r in rules] == ["GOOD_ONE"]
    text = "\n".join(errors)
    for name, line in (
        ("BAD_REGEX", 5),
        ("BAD_META", 8),
        ("META_UNKNOWN", 11),
        ("TWO_KINDS", 20),
        ("lowercase", 24),
        ("BAD_SCORE", 27),
        ("UNKNOWN_KEY", 31),
    ):
        assert f"broken.toml:{line}: rule {name}:" in text, name
    assert "unknown rule NOPE" in text and "a cycle of meta rules" in text
    assert "bad regex" in text


def test_invalid_toml_file_is_skipped_not_fatal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[rules.X\nbody = 'x'\n")
    caplog.set_level(logging.ERROR)
    checks = build(
        Services(config=Config(rules=RulesConfig(files=(str(bad), str(tmp_path / "missing.toml")))))
    )
    assert checks, "the bundled rules still load"
    assert f"{bad}: not valid TOML" in caplog.text
    assert "missing.toml unreadable" in caplog.text


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("A", True),
        ("!A", True),
        ("A && B || C", True),
        ("!(A || B) && !!C", True),
        ("A &&", False),
        ("(A", False),
        ("A B", False),
        ("A & B", False),
        ("__import__('os')", False),
        ("(" * 60 + "A" + ")" * 60, False),
    ],
)
def test_meta_parser(text: str, ok: bool) -> None:
    if ok:
        parse_meta(text)
    else:
        with pytest.raises(RuleError):
            parse_meta(text)


def test_meta_precedence() -> None:
    tree = parse_meta("A || B && !C")
    assert evaluate(tree, {"A": False, "B": True, "C": False}.__getitem__)
    assert not evaluate(tree, {"A": False, "B": True, "C": True}.__getitem__)


def test_bundled_rules_load_cleanly_and_hit_spam() -> None:
    rules, errors = load_rules(rule_sources(True, []))
    assert errors == [] and len(rules) >= 15
    spam = (
        b'From: "support@bank.test" <x@evil.test>\r\nTo: a@b.test\r\n'
        b"Subject: URGENT ACCOUNT SUSPENDED\r\n\r\n"
        b"Please verify your account at http://192.0.2.77/login now.\r\n"
    )
    found = {r.name for r in match(rules, make_tx(spam))}
    assert {
        "SUBJ_URGENT",
        "FROM_DISPLAY_ADDR",
        "BODY_VERIFY_ACCOUNT",
        "URI_IP_HOST",
        "PHISH_COMBO",
    } <= found
    ham = b"From: a@b.test\r\nTo: c@d.test\r\nSubject: lunch?\r\n\r\nShall we meet at noon?\r\n"
    assert match(rules, make_tx(ham)) == []


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
    import re

    assert required_literals(re.compile(pattern)) == expected


PREFILTER_PATTERNS = [
    r"(?i)\b(?:viagra|cialis)\b",
    r"(?i)opt[- ]out.{0,30}(?:now|today)",
    r"(?i)lottery.{0,20}(?:won|prize)",
    r"Free(?i:MONEY)",
    r"(?i)\bkelvin\b",
    r"(?i)bitcoin",
    r"100%\s*free",
    r"a?bc",
    r"(?i)\bviagra\s+now\b",  # leading literals: tried where they occur
    r"(?i)stra\u00dfe",
]
UTF8 = "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit"
PREFILTER_BODIES = [
    "Buy VIAGRA now",
    "ViAgRa",
    "viagras are not a word",
    "You WON the LOTTERY? no: the Lottery prize was won",
    "FreeMoney FREEMONEY Freemoney",
    "\u212aelvin",  # KELVIN SIGN: re's IGNORECASE takes it for k
    "B\u0130TCOIN and b\u0131tcoin",  # dotted and dotless i
    "100%   free",
    "xbc",
    "nothing to see here",
    "OPT-OUT TODAY, opt out now",
    "opt\tout now, OPT OUT.",
    "viagra " * (_TRIES + 2) + "VIAGRA now",  # more leads than tries before the match
    "viagra " * (_TRIES + 2),
    "X" * 1000 + " viagra now",  # a long text of few distinct characters
    "X" * 1000,
    "it\u2019s VIAGRA   now",  # wider than Latin-1: non-ASCII becomes "?" for the literals
    "STRA\u1e9eE and stra\u00dfe",  # fold lengthens the text: no leading-literal places
    "\u212aELVIN\u2019s \u212aelvin",
]


def test_prefilter_gives_exactly_the_regex_results() -> None:
    import re

    rules = "\n".join(
        f"[rules.R{n}]\nbody = '{pattern}'\n" for n, pattern in enumerate(PREFILTER_PATTERNS)
    )
    loaded, errors = load_rules([("t.toml", rules)])
    assert errors == [] and all(rule.needles for rule in loaded)
    for body in PREFILTER_BODIES:
        tx = make_tx(f"Subject: s\r\n{UTF8}\r\n\r\n{body}\r\n".encode())
        assert body in tx.message.text
        got = {rule.name for rule in match(loaded, tx)}
        want = {
            f"R{n}"
            for n, pattern in enumerate(PREFILTER_PATTERNS)
            if re.search(pattern, tx.message.text)
        }
        assert got == want, body
    assert {rule.name for rule in match(loaded, make_tx(b"Subject: s\r\n\r\nKELVIN\r\n"))} == {"R4"}


def test_body_rules_search_a_bounded_prefix() -> None:
    rules = "[rules.LATE]\nbody = 'needle'\n"
    early = b"Subject: s\r\n\r\nneedle " + b"x" * (BODY_LIMIT + 100) + b"\r\n"
    late = b"Subject: s\r\n\r\n" + b"x" * (BODY_LIMIT + 100) + b" needle\r\n"
    assert hits(rules, early) == {"LATE": 1.0}
    assert hits(rules, late) == {}


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
    import re

    assert leading_literals(re.compile(pattern), folded) == expected


def test_folds_to_ascii_is_complete() -> None:
    chars = (chr(c) for c in range(0x80, 0x110000) if not 0xD800 <= c < 0xE000)
    assert "".join(c for c in chars if any(f.isascii() for f in fold(c))) == _FOLDS_TO_ASCII


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


def test_metas_see_only_the_rules_before_them() -> None:
    rules, errors = load_rules([("t.toml", RULES)])
    assert errors == [] and isinstance(rules, RuleSet)
    assert [r.name for r in rules][-2:] == ["META_BOTH", "META_OF_META"]
    msg = b"Subject: You WIN\r\n\r\nClaim your cash prize\r\n"
    # As a plain list, out of order: a meta before a rule it names sees it false.
    reordered = [rules[-1], rules[-2], *rules[:-2]]
    assert [r.name for r in match(reordered, make_tx(msg))] == ["SUBJ_WIN", "BODY_CASH"]
    assert [r.name for r in match(rules, make_tx(msg))] == [
        "SUBJ_WIN",
        "BODY_CASH",
        "META_BOTH",
        "META_OF_META",
    ]
