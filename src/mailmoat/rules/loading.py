"""Rules from TOML files: the bundled set and the admin's own files.

Contract: ``load_rules`` takes (label, TOML text) pairs, in order (a later
rule of the same name replaces an earlier one), and returns a prepared
``RuleSet`` plus error lines. Each rule is a table ``[rules.NAME]`` with
exactly one of

- ``header = "Subject"`` (or ``"ALL"`` for the whole header block) and
  ``pattern``: searched in every value of that field (decoded);
- ``body = "regex"``: the Subject, the text parts and the rendered HTML;
- ``rawbody = "regex"``: the undecoded body (first 256 KiB, latin-1);
- ``uri = "regex"``: each URL the parser found;
- ``meta = "A && (B || !C)"``: a boolean combination of other rules;

plus ``score`` (default 1.0) and ``description``. Names are UPPER_SNAKE and
are the symbols; names starting with ``__`` are helpers for metas and never
reported. Regexes are compiled once, here.

Failure mode: a broken rule (bad regex, unknown key, meta naming an unknown
rule, a cycle) is returned as ``file:line: rule NAME: problem`` and skipped,
never a crash; a file that is not valid TOML is reported and skipped whole;
``rule_sources`` logs an unreadable file and skips it.
"""

from __future__ import annotations

import logging
import re
import tomllib
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

from mailmoat.rules.matcher import RuleSet
from mailmoat.rules.meta import names_in, parse_meta
from mailmoat.rules.model import KINDS, Rule, RuleError
from mailmoat.rules.prefilter import leading_literals, required_literals

log = logging.getLogger("mailmoat.rules")

_NAME = re.compile(r"^_{0,2}[A-Z][A-Z0-9_]{0,62}$")


def _line_of(text: str, name: str) -> int:
    pattern = re.compile(rf"^[ \t]*\[\s*rules\s*\.\s*\"?{re.escape(name)}\"?\s*\]", re.M)
    match = pattern.search(text)
    return text.count("\n", 0, match.start()) + 1 if match else 0


def compile_rule(name: str, table: Any, source: str) -> Rule:
    if not _NAME.match(name):
        raise RuleError("name must be UPPER_SNAKE (letters, digits, _), at most 64 characters")
    if not isinstance(table, dict):
        raise RuleError("must be a table")
    unknown = set(table) - {*KINDS, "pattern", "score", "description"}
    if unknown:
        raise RuleError(f"unknown key {sorted(unknown)[0]!r}")
    kinds = [k for k in KINDS if k in table]
    if len(kinds) != 1:
        raise RuleError(f"needs exactly one of {', '.join(KINDS)}")
    kind = kinds[0]
    score = table.get("score", 1.0)
    if isinstance(score, bool) or not isinstance(score, int | float):
        raise RuleError("score must be a number")
    description = str(table.get("description", ""))
    spec = table[kind]
    if not isinstance(spec, str) or not spec:
        raise RuleError(f"{kind} must be a non-empty string")
    rule = Rule(name, kind, float(score), description, source)
    if kind == "meta":
        return Rule(**{**rule.__dict__, "expr": parse_meta(spec)})
    pattern = table.get("pattern") if kind == "header" else spec
    if kind != "header" and "pattern" in table:
        raise RuleError("pattern only goes with header")
    if not isinstance(pattern, str) or not pattern:
        raise RuleError("header rules need a pattern")
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise RuleError(f"bad regex: {exc}") from None
    header = spec.lower() if kind == "header" else ""
    needles, folded = required_literals(regex)
    return Rule(
        **{
            **rule.__dict__,
            "regex": regex,
            "header": header,
            "needles": needles,
            "folded": folded,
            "lead": leading_literals(regex, folded),
        }
    )


def load_rules(sources: Iterable[tuple[str, str]]) -> tuple[RuleSet, list[str]]:
    """(rules in evaluation order, error lines) from (label, TOML text) pairs."""
    rules: dict[str, Rule] = {}
    errors: list[str] = []
    read_toml(sources, rules, errors)
    return RuleSet(order_metas(rules, errors)), errors


def read_toml(
    sources: Iterable[tuple[str, str]], rules: dict[str, Rule], errors: list[str]
) -> None:
    """Add the rules of (label, TOML text) pairs to ``rules`` (a later rule of
    a name replaces the earlier one), error lines to ``errors``."""
    for label, text in sources:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            errors.append(f"{label}: not valid TOML, file skipped: {exc}")
            continue
        unexpected = set(data) - {"rules"}
        if unexpected:
            errors.append(f"{label}: unknown top-level key {sorted(unexpected)[0]!r} ignored")
        tables = data.get("rules", {})
        if not isinstance(tables, dict):
            errors.append(f"{label}: 'rules' must be a table, file skipped")
            continue
        for name, table in tables.items():
            where = f"{label}:{_line_of(text, name)}"
            try:
                rules[name] = compile_rule(name, table, where)
            except RuleError as exc:
                errors.append(f"{where}: rule {name}: {exc}")
                rules.pop(name, None)


def order_metas(rules: dict[str, Rule], errors: list[str]) -> list[Rule]:
    """Plain rules first, then metas so that each comes after what it uses;
    metas naming unknown rules or in a cycle are dropped."""
    ordered = [r for r in rules.values() if r.kind != "meta"]
    done = {r.name for r in ordered}
    pending = {r.name: r for r in rules.values() if r.kind == "meta"}
    while pending:
        ready = [m for m in pending.values() if names_in(m.expr) <= done]
        if not ready:
            for meta in pending.values():
                missing = sorted(names_in(meta.expr) - done - set(pending))
                problem = f"unknown rule {missing[0]}" if missing else "a cycle of meta rules"
                errors.append(f"{meta.source}: rule {meta.name}: {problem}")
            break
        for meta in ready:
            ordered.append(meta)
            done.add(meta.name)
            del pending[meta.name]
    return ordered


def bundled_text() -> str:
    """The bundled TOML rules."""
    return resources.files("mailmoat").joinpath("data/rules.toml").read_text("utf-8")


def rule_sources(bundled: bool, files: Iterable[str]) -> list[tuple[str, str]]:
    sources: list[tuple[str, str]] = []
    if bundled:
        sources.append(("mailmoat/data/rules.toml", bundled_text()))
    for path in files:
        try:
            sources.append((path, Path(path).read_text(encoding="utf-8")))
        except (OSError, UnicodeError) as exc:
            log.error("rules file %s unreadable, skipped: %s", path, exc)
    return sources
