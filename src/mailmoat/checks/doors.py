"""Symbols that no check adds: the SMTP front's protocol tests and the runner's.

Contract: ``FRONT_SPEC`` declares the symbols of the SMTP front's protocol
tests (pregreet, protocol violations, undeclared 8-bit data);
``finding_evidence(finding, config)`` scores one ``Finding`` the front's
engine recorded: its symbol (score from ``[scores]`` or the default), plus a
forced ``550 5.5.1`` refusal (applied at the first RCPT) when the finding's
action is ``enforce``; ``finding_action`` is that configured action
(``ignore``, ``enforce`` or ``drop``: the front then says ``521`` and
closes). ``RUNNER_SPEC`` the
``CHECK_<NAME>_FAILED`` family the runner adds for a check that crashed or
timed out. They are listed with the checks' specs (``mailmoat symbols``,
docs/symbols.md, ``[scores]`` validation) but are no ``[checks.NAME]``.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailmoat.checks.spec import CheckSpec, FamilySpec, SymbolSpec
from mailmoat.config import Config
from mailmoat.core.findings import Finding
from mailmoat.core.symbols import Action, Evidence, Forced, Precedence, Stage, Symbol

FRONT_SPEC = CheckSpec(
    name="smtp",
    stages=(Stage.CONNECT, Stage.HELO, Stage.MAIL, Stage.RCPT, Stage.DATA),
    summary="Protocol tests of the SMTP front (pregreet, protocol, 8-bit data).",
    symbols=(
        SymbolSpec(
            "PREGREET",
            0.0,
            "The client talked before our greeting: a bot that does not wait.",
            "protocol",
        ),
        SymbolSpec(
            "PROTOCOL_BARE_NEWLINE",
            0.0,
            "SMTP commands ended with a bare LF, as hand-made bot clients do.",
            "protocol",
        ),
        SymbolSpec(
            "PROTOCOL_NON_SMTP",
            0.0,
            "The client sent a non-SMTP command (HTTP, POP...).",
            "protocol",
        ),
        SymbolSpec(
            "PROTOCOL_PIPELINING",
            0.0,
            "The client pipelined commands without being offered PIPELINING.",
            "protocol",
        ),
        SymbolSpec(
            "SMTP_8BIT_UNDECLARED",
            0.5,
            "8-bit bytes were sent without BODY=8BITMIME or SMTPUTF8.",
            "protocol",
        ),
    ),
)


@dataclass(frozen=True)
class FindingRule:
    symbol: str
    # The reason of the symbol, of an enforced refusal and of a drop's record.
    reason: str


FINDING_RULES: dict[Finding, FindingRule] = {
    Finding.PREGREET: FindingRule("PREGREET", "pregreet"),
    Finding.BARE_NEWLINE: FindingRule("PROTOCOL_BARE_NEWLINE", "protocol"),
    Finding.NON_SMTP: FindingRule("PROTOCOL_NON_SMTP", "protocol"),
    Finding.PIPELINING: FindingRule("PROTOCOL_PIPELINING", "protocol"),
    Finding.UNDECLARED_8BIT: FindingRule("SMTP_8BIT_UNDECLARED", ""),
}


def finding_action(finding: Finding, config: Config) -> str:
    """``ignore``, ``enforce`` or ``drop``, as configured for ``finding``."""
    if finding is Finding.PREGREET:
        return config.pregreet.action
    if finding is Finding.BARE_NEWLINE:
        return config.protocol.bare_newline
    if finding is Finding.NON_SMTP:
        return config.protocol.non_smtp_command
    if finding is Finding.PIPELINING:
        return config.protocol.pipelining
    return "ignore"  # undeclared 8-bit: strict_8bit refuses it in the front


def finding_evidence(finding: Finding, config: Config) -> Evidence:
    """What ``finding`` is worth: its symbol, and the forced refusal when
    its action is ``enforce``."""
    rule = FINDING_RULES[finding]
    score = config.scores.get(rule.symbol, FRONT_SPEC.score(rule.symbol))
    evidence = Evidence(symbols=[Symbol(rule.symbol, score, rule.reason)])
    if finding_action(finding, config) == "enforce":
        evidence.forced.append(
            Forced(Action.REJECT, Precedence.TEST, rule.reason, 550, "5.5.1", "Protocol error")
        )
    return evidence


RUNNER_SPEC = CheckSpec(
    name="runner",
    stages=(Stage.CONNECT, Stage.HELO, Stage.MAIL, Stage.RCPT, Stage.DATA),
    summary="The check runner: checks that crashed or timed out.",
    families=(
        FamilySpec(
            "CHECK_",
            "CHECK_<NAME>_FAILED",
            "The check NAME failed or timed out; its fail mode (checks.NAME.fail_mode) applied.",
            "runner",
            score=0.0,
        ),
    ),
)
