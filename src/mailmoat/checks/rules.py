"""The rules check (data stage): runs the loaded rule set on each message.

Contract: ``build`` loads the rules the ``[rules]`` config names (the
bundled TOML set, SpamAssassin's stock rules and the admin's files: see
``mailmoat.rules.sources``), logs every problem with file and line (one
summary line for the system rule files), and returns one ``RulesCheck``
(none when no rule loaded). The check adds each rule that hits as a symbol
with its score (times its hit count for rules that count matches), helpers
(names starting with ``__``) excepted. Failure mode: broken rules are
skipped at load; a message never makes the check fail because of its rules.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import ClassVar

from mailmoat.checks.base import Check, Services
from mailmoat.checks.spec import CheckSpec
from mailmoat.core.symbols import Evidence, Stage
from mailmoat.core.transaction import Transaction
from mailmoat.rules import Rule, RuleSet
from mailmoat.rules.sources import load_configured

log = logging.getLogger("mailmoat.checks.rules")

# The symbols are the loaded rules' names (``mailmoat.checks.catalog``).
SPEC = CheckSpec(
    name="rules",
    stages=(Stage.DATA,),
    summary="The loaded rule set: bundled TOML rules, SpamAssassin rules, the admin's files.",
    # The relay line the rules see names the client's reverse DNS (session.client_rdns).
    requires=("rdns",),
)


class RulesCheck(Check):
    name: ClassVar[str] = "rules"
    stage: ClassVar[str] = Stage.DATA

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = rules if isinstance(rules, RuleSet) else RuleSet(rules)

    async def run(self, tx: Transaction, evidence: Evidence) -> None:
        for rule, count in self.rules.match_counts(tx):
            if not rule.name.startswith("__"):
                evidence.add(rule.name, rule.score * count, rule.description[:80])


def build(services: Services) -> list[Check]:
    rules, report = load_configured(services.config.rules)
    system = 0
    for problem in report.problems():
        if problem.admin:
            log.error("%s: %s", problem.where, problem.detail)
        else:
            system += 1
    if system:
        log.info("SpamAssassin system rules: %d problems (see mailmoat rules --stats)", system)
    return [RulesCheck(rules)] if rules else []
