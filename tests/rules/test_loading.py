"""TOML rule files: broken rules named by file and line, the bundled set."""

from __future__ import annotations

from authfakes import make_tx
from mailmoat.rules import load_rules, match, rule_sources

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
