"""The literal gate of a whole-value database: the literals a value must hold
for any of its rules to match, or None when that is unknown or too costly."""

from __future__ import annotations

import re

from mailmoat.rules.enginetext import GATE_LITERALS, literal_gate
from mailmoat.rules.matcher import Step
from mailmoat.rules.model import Rule
from mailmoat.rules.prefilter import leading_literals, required_literals


def _step(position: int, pattern: str, flags: int = re.ASCII, negate: bool = False) -> Step:
    regex = re.compile(pattern, flags)
    needles, folded = required_literals(regex)
    rule = Rule(
        f"R{position}",
        "header",
        1.0,
        "",
        "test:1",
        regex=regex,
        header="X-Test",
        text="sa-header:x-test",
        needles=needles,
        folded=folded,
        lead=leading_literals(regex, folded),
        negate=negate,
    )
    return Step.of(position, rule)


def test_the_gate_holds_each_rules_literals_as_they_are_or_folded() -> None:
    gate = literal_gate([_step(0, r"^bulk$"), _step(1, r"list|junk", re.ASCII | re.IGNORECASE)])
    assert gate == (("bulk",), ("junk", "list"))


def test_no_gate_when_a_rule_has_no_literal_or_is_negated() -> None:
    assert literal_gate([_step(0, r"bulk"), _step(1, r"^\d+$")]) is None
    assert literal_gate([_step(0, r"bulk"), _step(1, r"list", negate=True)]) is None


def test_no_gate_beyond_the_literals_worth_testing() -> None:
    words = [f"word{n}" for n in range(GATE_LITERALS + 1)]
    assert literal_gate([_step(n, word) for n, word in enumerate(words)]) is None
    assert literal_gate([_step(n, word) for n, word in enumerate(words[:-1])]) is not None
