"""The matcher: every kind and meta, hits exactly those of the regexes."""

from __future__ import annotations

import re

from authfakes import make_tx
from mailmoat.rules import BODY_LIMIT, TRIES, RuleSet, load_rules, match

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
    "viagra " * (TRIES + 2) + "VIAGRA now",  # more leads than tries before the match
    "viagra " * (TRIES + 2),
    "X" * 1000 + " viagra now",  # a long text of few distinct characters
    "X" * 1000,
    "it\u2019s VIAGRA   now",  # wider than Latin-1: non-ASCII becomes "?" for the literals
    "STRA\u1e9eE and stra\u00dfe",  # fold lengthens the text: no leading-literal places
    "\u212aELVIN\u2019s \u212aelvin",
]


def test_prefilter_gives_exactly_the_regex_results() -> None:
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


def test_rules_nothing_reads_are_not_evaluated() -> None:
    text = RULES + (
        "\n[rules.__UNREAD]\nbody = 'cash'\n"
        "\n[rules.__UNREAD_META]\nmeta = '__UNREAD || SUBJ_WIN'\n"
        "\n[rules.__READ_DEEP]\nbody = 'prize'\n"
        "\n[rules.__READ_META]\nmeta = '__READ_DEEP'\n"
        "\n[rules.READER]\nmeta = '__READ_META'\n"
    )
    rules, errors = load_rules([("t.toml", text)])
    assert errors == []
    pruned = RuleSet(list(rules), reported=lambda rule: not rule.name.startswith("__"))
    assert sorted(r.name for r in pruned.unread) == ["__UNREAD", "__UNREAD_META"]
    assert len(pruned) == len(rules)  # loaded all the same
    msg = make_tx(b"Subject: You WIN\r\n\r\nClaim your cash prize, secret\r\n")
    everything = [r.name for r in rules.match(msg)]
    assert {"__UNREAD", "__UNREAD_META", "__READ_DEEP", "READER"} <= set(everything)
    unread = {r.name for r in pruned.unread}
    assert [r.name for r in pruned.match(msg)] == [n for n in everything if n not in unread]
