"""The multi-pattern engine: same hits as plain ``re``, and no catastrophic backtracking."""

from __future__ import annotations

import random
import re
import time
from pathlib import Path

import pytest

from authfakes import make_tx
from mailmoat.rules import engine
from mailmoat.rules.loading import order_metas
from mailmoat.rules.matcher import RuleSet
from mailmoat.rules.sa import load_sa
from mailmoat.rules.satexts import body_lines
from servers import in_ci

needs_engine = pytest.mark.skipif(
    not engine.available() and not in_ci(), reason="hyperscan not installed"
)

RULES = r"""
body   B_WORDS     /\bcheap\s+(?:pills|meds)\b/i
body   B_ANCHOR    /^hello there/
body   B_END       /goodbye$/
body   B_CLASS     /[0-9]{3}-[0-9]{4}/
body   B_LOOK      /price(?!less)/i
body   B_BACKREF   /(\w{3,})\s+\1/
body   B_NO_LIT    /\d\s\d\s\d/
rawbody R_TAG      /<font[^>]+color="?\#?f{6}/i
uri    U_CLAIM     m{^https?://claim\.example\.com/}
full   F_MAILER    /^X-Mailer: .{0,20}Blast/m
header H_SUBJ      Subject =~ /(?:win|won)\b/i
header H_FROM      From:addr =~ /\@(?:example|sample)\.test$/
header H_NEG       Subject !~ /hello/
body   __COUNT     /x/
tflags __COUNT     multiple maxhits=3
meta   M_COUNT     __COUNT > 2
"""

WORDS = [
    *("cheap", "pills", "meds", "hello", "there", "goodbye", "price", "priceless"),
    *("555-1234", "win", "won", "x", "X", "the", "the", "abc", "abc", "1", "2", "3"),
    *("<font", "color=#ffffff>", "Blast"),
]


def random_message(seed: int) -> bytes:
    rng = random.Random(seed)
    lines = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 12))) for _ in range(6)]
    subject = " ".join(rng.choice(WORDS) for _ in range(3))
    sender = rng.choice(["a@example.test", "b@other.test", "c@sample.test"])
    head = f"From: {sender}\r\nSubject: {subject}\r\nX-Mailer: Mass Blast 1\r\n"
    host = rng.choice(["claim", "other"])
    body = "\r\n\r\n".join(lines) + f"\r\nhttp://{host}.example.com/x\r\n"
    if seed % 3 == 0:
        head += "Content-Type: text/html\r\n"
        body = "<html><body>" + body.replace("\r\n\r\n", "<p>") + "</body></html>\r\n"
    return (head + "\r\n" + body).encode()


def rule_sets(tmp_path: Path, text: str) -> tuple[RuleSet, RuleSet]:
    path = tmp_path / "t.cf"
    path.write_text(text)
    loaded = load_sa([(str(path), True)])
    assert loaded.problems == []
    rules = order_metas(dict(loaded.rules), [])
    return RuleSet(rules, use_engine=True), RuleSet(rules, use_engine=False)


@needs_engine
def test_engine_and_pure_python_agree_on_generated_messages(tmp_path: Path) -> None:
    with_engine, pure = rule_sets(tmp_path, RULES)
    assert with_engine.engine_rules >= 10 and pure.engine_rules == 0
    seen: set[str] = set()
    for seed in range(300):
        tx = make_tx(random_message(seed))
        got = with_engine.match_counts(tx)
        assert got == pure.match_counts(tx), seed
        seen.update(rule.name for rule, _ in got)
    assert seen >= {"B_WORDS", "B_CLASS", "B_LOOK", "R_TAG", "U_CLAIM", "F_MAILER", "H_SUBJ"}
    assert seen >= {"H_FROM", "H_NEG", "M_COUNT", "B_BACKREF", "B_NO_LIT", "B_ANCHOR", "B_END"}


def test_the_pure_python_path_runs_without_the_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine, "DISABLED", True)
    assert not engine.available()
    _, pure = rule_sets(tmp_path, RULES)
    found = {rule.name for rule in pure.match(make_tx(random_message(1)))}
    expected: set[str] = set()
    tx = make_tx(random_message(1))
    lines = body_lines(tx.message)
    for rule in pure:
        if rule.kind == "body" and rule.regex and any(map(rule.regex.search, lines)):
            expected.add(rule.name)
    assert expected and expected <= found


PATHOLOGICAL = "body SLOW /(a+)+b/\nbody FAST /aaa/\n"
ATTACK = b"Subject: s\r\n\r\n" + b"a" * 5000 + b"!\r\n"


@pytest.mark.parametrize(
    ("pattern", "risky"),
    [
        (r"(a+)+b", True),
        (r"(\w+\s?)*$", True),
        (r"(a|ab)*c", True),
        (r"(?:x+y?)+z", True),
        (r"(?:[^\n]{1,200}\n+)*end", False),  # delimited: one way to split
        (r"(?:\w+\.)+com", False),
        (r"a.*b.*c", False),
        (r"(?:ab){2,5}", False),
    ],
)
def test_backtracking_risk(pattern: str, risky: bool) -> None:
    assert engine.backtracking_risk(re.compile(pattern, re.A)) == risky


@needs_engine
def test_pathological_regex_is_decided_by_the_engine_in_linear_time(tmp_path: Path) -> None:
    with_engine, _ = rule_sets(tmp_path, PATHOLOGICAL)
    assert with_engine.unbounded == []
    started = time.perf_counter()
    found = {rule.name for rule in with_engine.match(make_tx(ATTACK))}
    assert time.perf_counter() - started < 1.0
    assert found == {"FAST"}
    hit = ATTACK.replace(b"!", b"b")
    assert {rule.name for rule in with_engine.match(make_tx(hit))} == {"SLOW", "FAST"}


def test_pathological_regex_without_the_engine_is_left_out_not_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine, "DISABLED", True)
    _, pure = rule_sets(tmp_path, PATHOLOGICAL)
    assert [rule.name for rule in pure.unbounded] == ["SLOW"]
    started = time.perf_counter()
    found = {rule.name for rule in pure.match(make_tx(ATTACK))}
    assert time.perf_counter() - started < 1.0
    assert found == {"FAST"}


@needs_engine
def test_compiled_databases_are_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILMOAT_CACHE", str(tmp_path / "cache"))
    rule_sets(tmp_path, RULES)
    stored = list((tmp_path / "cache").rglob("*"))
    assert any(p.is_file() for p in stored)
    again, _ = rule_sets(tmp_path, RULES)  # loads from the cache
    assert again.engine_rules >= 10
    assert {r.name for r in again.match(make_tx(random_message(4)))} == {
        r.name for r in RuleSet(list(again), use_engine=False).match(make_tx(random_message(4)))
    }
