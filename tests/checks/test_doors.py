"""The SMTP front's findings, scored outside the engine (checks/doors.py)."""

from __future__ import annotations

import dataclasses

import pytest

from mailmoat.checks.doors import FINDING_RULES, FRONT_SPEC, finding_action, finding_evidence
from mailmoat.config import Config
from mailmoat.core.findings import Finding
from mailmoat.core.symbols import Action, Precedence


def _config(**protocol: str) -> Config:
    config = Config()
    return dataclasses.replace(config, protocol=dataclasses.replace(config.protocol, **protocol))


def test_every_finding_has_a_declared_symbol() -> None:
    declared = {symbol.name for symbol in FRONT_SPEC.symbols}
    assert {rule.symbol for rule in FINDING_RULES.values()} <= declared
    assert set(FINDING_RULES) == set(Finding)


def test_an_ignored_finding_is_only_its_symbol() -> None:
    evidence = finding_evidence(Finding.BARE_NEWLINE, _config(bare_newline="ignore"))
    assert [(s.name, s.detail) for s in evidence.symbols] == [("PROTOCOL_BARE_NEWLINE", "protocol")]
    assert evidence.forced == []


def test_an_enforced_finding_forces_a_protocol_refusal() -> None:
    evidence = finding_evidence(Finding.PIPELINING, _config(pipelining="enforce"))
    [forced] = evidence.forced
    assert (forced.action, forced.precedence, forced.reason) == (
        Action.REJECT,
        Precedence.TEST,
        "protocol",
    )
    assert (forced.code, forced.status) == (550, "5.5.1")


def test_scores_come_from_the_config_over_the_spec() -> None:
    config = dataclasses.replace(Config(), scores={"PREGREET": 4.5})
    [symbol] = finding_evidence(Finding.PREGREET, config).symbols
    assert (symbol.name, symbol.score, symbol.detail) == ("PREGREET", 4.5, "pregreet")
    [default] = finding_evidence(Finding.UNDECLARED_8BIT, Config()).symbols
    assert default.score == FRONT_SPEC.score("SMTP_8BIT_UNDECLARED")


@pytest.mark.parametrize(
    ("finding", "key", "value"),
    [
        (Finding.NON_SMTP, "non_smtp_command", "drop"),
        (Finding.BARE_NEWLINE, "bare_newline", "ignore"),
        (Finding.PIPELINING, "pipelining", "drop"),
    ],
)
def test_the_action_is_the_configured_one(finding: Finding, key: str, value: str) -> None:
    assert finding_action(finding, _config(**{key: value})) == value
    assert finding_action(Finding.UNDECLARED_8BIT, _config(**{key: value})) == "ignore"
