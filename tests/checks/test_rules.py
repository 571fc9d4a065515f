"""Rules engine: kinds, metas, broken rules named by file and line, bundled set."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from authfakes import make_tx, names
from mailmoat.checks.base import Services
from mailmoat.checks.rules import (
    BODY_LIMIT,
    RuleError,
    build,
    evaluate,
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
