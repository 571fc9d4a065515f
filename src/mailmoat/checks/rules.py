"""The rules check (data stage): runs the loaded rule set on each message.

Contract: ``build`` loads the rules the ``[rules]`` config names (see
``mailmoat.rules``), logs every broken rule with file and line, and returns
one ``RulesCheck`` (none when no rule loaded). The check adds each rule that
hits as a symbol with its score, helpers (names starting with ``__``)
excepted. Failure mode: broken rules are skipped at load; a message never
makes the check fail because of its rules.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import ClassVar

from mailmoat.checks.base import Check, Services
from mailmoat.core.symbols import Evidence, Stage
from mailmoat.core.transaction import Transaction
from mailmoat.rules import Rule, RuleSet, load_rules, rule_sources

log = logging.getLogger("mailmoat.checks.rules")


class RulesCheck(Check):
    name: ClassVar[str] = "rules"
    stage: ClassVar[str] = Stage.DATA

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = rules if isinstance(rules, RuleSet) else RuleSet(rules)

    async def run(self, tx: Transaction, evidence: Evidence) -> None:
        for rule in self.rules.match(tx):
            if not rule.name.startswith("__"):
                evidence.add(rule.name, rule.score, rule.description[:80])


def build(services: Services) -> list[Check]:
    config = services.config.rules
    rules, errors = load_rules(rule_sources(config.bundled, config.files))
    for error in errors:
        log.error("%s", error)
    return [RulesCheck(rules)] if rules else []
