"""Every symbol mailmoat can add: the checks' specs and the loaded rules.

Contract: ``entries(config)`` lists every symbol a check, the SMTP front, the
runner or a loaded rule can add, as ``Entry`` rows (name, check, group,
default score, effective score after ``[scores]``, description, kind:
``symbol``, ``family`` or ``rule``), checks first in registry order, then the
rules by name (a ``[scores]`` name of a family is listed after its
family, with its effective score). ``rule_entries(rules_config)`` are the rules' rows: the
bundled TOML rules, SpamAssassin's stock rules and the admin's files, as the
rules check loads them (loaded once per process for the same config);
helpers (``__NAME``) are not symbols and are left out. A SpamAssassin rule
without a ``describe`` line gets "SpamAssassin rule NAME (no description)".
``known_symbol(name, config)`` says whether ``[scores] NAME`` can matter;
``description(name, config)`` is the one-line text of any symbol ("" when
unknown). Nothing raises for a rule file that does not load: its rules are
simply absent (``mailmoat config --check`` reports the file).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from mailmoat.checks.registry import all_specs, find_symbol
from mailmoat.checks.spec import FamilySpec
from mailmoat.config import Config, RulesConfig

RULES_CHECK = "rules"


@dataclass(frozen=True, slots=True)
class Entry:
    name: str
    check: str
    group: str
    # None: computed by the check (a curve, a configured weight).
    default: float | None
    effective: float | None
    description: str
    kind: str  # "symbol", "family" or "rule"

    def as_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "check": self.check,
            "group": self.group,
            "default": self.default,
            "effective": self.effective,
            "description": self.description,
            "kind": self.kind,
        }


def spec_entries(config: Config | None = None) -> list[Entry]:
    """The checks', the SMTP front's and the runner's symbols and families."""
    scores = config.scores if config is not None else {}
    found: list[Entry] = []
    for spec in all_specs():
        for symbol in spec.symbols:
            effective = scores.get(symbol.name, symbol.score)
            found.append(
                Entry(
                    symbol.name,
                    spec.name,
                    symbol.group,
                    symbol.score,
                    effective,
                    symbol.description,
                    "symbol",
                )
            )
        for family in spec.families:
            found.append(
                Entry(
                    family.pattern,
                    spec.name,
                    family.group,
                    family.score,
                    family.score,
                    family.description,
                    "family",
                )
            )
    return found


def rule_description(name: str, description: str, source: str) -> str:
    """The rule's own description, or one made for a rule without any."""
    text = " ".join(description.split())
    if text:
        return text
    if ".cf:" in source:
        return f"SpamAssassin rule {name} (no description)"
    return f"Rule {name} (no description)"


@functools.lru_cache(maxsize=8)
def rule_entries(rules_config: RulesConfig) -> tuple[Entry, ...]:
    """The loaded rules as entries (default scores; ``[scores]`` not applied)."""
    from mailmoat.rules.sources import load_configured

    rules, report = load_configured(rules_config)
    left_out = {rule.name for rule in report.unbounded}
    found = [
        Entry(
            rule.name,
            RULES_CHECK,
            "spamassassin" if ".cf:" in rule.source else "rules",
            rule.score,
            rule.score,
            rule_description(rule.name, rule.description, rule.source),
            "rule",
        )
        for rule in rules
        if not rule.name.startswith("__") and rule.name not in left_out
    ]
    return tuple(sorted(found, key=lambda entry: entry.name))


def entries(config: Config) -> list[Entry]:
    """Every symbol, with the effective scores of ``config``; a ``[scores]``
    name of a family (``DNSBL_ZEN``) is listed as well, after the family."""
    found = spec_entries(config)
    declared = {entry.name for entry in found}
    rule_names = {entry.name for entry in rule_entries(config.rules)}
    for name, score in sorted(config.scores.items()):
        hit = find_symbol(name)
        if name in declared or name in rule_names or hit is None:
            continue
        spec, family = hit
        at = max(i for i, entry in enumerate(found) if entry.check == spec.name) + 1
        found.insert(
            at,
            Entry(name, spec.name, family.group, family.score, score, family.description, "family"),
        )
        declared.add(name)
    for rule in rule_entries(config.rules):
        if rule.name in declared:
            continue
        effective = config.scores.get(rule.name, rule.default)
        found.append(
            Entry(
                rule.name,
                rule.check,
                rule.group,
                rule.default,
                effective,
                rule.description,
                rule.kind,
            )
        )
    return found


@functools.lru_cache(maxsize=8)
def _rule_texts(rules_config: RulesConfig) -> dict[str, str]:
    return {entry.name: entry.description for entry in rule_entries(rules_config)}


def known_symbol(name: str, config: Config) -> bool:
    """A name a check declares (exactly or by family prefix) or a loaded rule."""
    return find_symbol(name) is not None or name in _rule_texts(config.rules)


def description(name: str, config: Config) -> str:
    """The one-line text of a symbol, "" when nothing declares it: a
    check's exact symbol, else a loaded rule, else a check's family."""
    found = find_symbol(name)
    if found is not None and not isinstance(found[1], FamilySpec):
        return found[1].description
    text = _rule_texts(config.rules).get(name, "")
    if text or found is None:
        return text
    return found[1].description
