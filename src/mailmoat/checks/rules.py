"""A rules engine: header, body, raw-body, URI regexes and meta rules (data stage).

Contract: rules come from TOML files (the bundled ``mailmoat/data/rules.toml``
unless ``rules.bundled = false``, then ``rules.files`` in order; a later rule
of the same name replaces an earlier one). Each rule is a table
``[rules.NAME]`` with exactly one of

- ``header = "Subject"`` (or ``"ALL"`` for the whole header block) and
  ``pattern``: searched in every value of that field (decoded);
- ``body = "regex"``: the Subject, the text parts and the rendered HTML;
- ``rawbody = "regex"``: the undecoded body (first 256 KiB, latin-1);
- ``uri = "regex"``: each URL the parser found;
- ``meta = "A && (B || !C)"``: a boolean combination of other rules
  (``&&``, ``||``, ``!``, parentheses; parsed, never ``eval``-ed);

plus ``score`` (default 1.0) and ``description``. Names are UPPER_SNAKE and
are the symbols; names starting with ``__`` are helpers for metas and never
reported. Regexes are compiled once, at build.

Speed: at build each regex also gets its *required literals* when they can
be read off its parse tree (``required_literals``): groups of strings of
which every match must contain one each (``\b(?:viagra|cialis)\b`` needs
"viagra" or "cialis"; ``bitcoin.{0,9}wallet`` needs both). A rule with a
group none of whose literals occurs in its text is a miss without running
the regex; a substring test is far cheaper than a regex scan, and on
most mail no literal occurs. Case-insensitive rules compare case-folded
literals with the case-folded text (folded once per message). The result is
the same as running every regex. Body rules search the first ``BODY_LIMIT``
characters of the decoded text, raw-body rules the first ``RAW_LIMIT`` bytes.

Failure mode: a broken rule (bad regex, unknown key, meta naming an unknown
rule, a cycle) is logged as ``file:line: rule NAME: problem`` and skipped,
never a crash; a file that is not valid TOML is logged and skipped whole.
"""

from __future__ import annotations

import importlib
import logging
import re
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

from mailmoat.checks.base import Check, Services
from mailmoat.core.symbols import Evidence, Stage
from mailmoat.core.transaction import Transaction

log = logging.getLogger("mailmoat.checks.rules")

KINDS = ("header", "body", "rawbody", "uri", "meta")
_NAME = re.compile(r"^_{0,2}[A-Z][A-Z0-9_]{0,62}$")
_TOKEN = re.compile(r"\s*(?:(&&)|(\|\|)|(!)|(\()|(\))|([A-Za-z_][A-Za-z0-9_]*))")
RAW_LIMIT = 256 * 1024
BODY_LIMIT = 256 * 1024

# The stdlib's regex parser (stable since 3.11, private, untyped): only read here
# to find required literals; any surprise there means "no literals known".
_sre: Any = importlib.import_module("re._parser")
# Characters whose case folding is not the ASCII letter re's IGNORECASE matches them to.
_FOLD_FIX = {0x130: "i", 0x131: "i"}

# Meta expression tree: a rule name, ("!", x), ("&&", a, b) or ("||", a, b).
Expr = str | tuple[Any, ...]


class RuleError(ValueError):
    pass


@dataclass(frozen=True)
class Rule:
    name: str
    kind: str
    score: float
    description: str
    source: str  # "file:line"
    regex: re.Pattern[str] | None = None
    header: str = ""
    expr: Expr = ""
    # A match contains a literal of each group (case-folded when ``folded``).
    needles: tuple[tuple[str, ...], ...] = ()
    folded: bool = False


def parse_meta(text: str) -> Expr:
    """Parse ``A && (B || !C)``; RuleError on anything else."""
    tokens: list[tuple[int, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise RuleError(f"meta: unexpected {text[pos:].strip()[:20]!r}")
        tokens.append((match.lastindex or 0, match.group(match.lastindex or 0)))
        pos = match.end()
    if len(tokens) > 500:
        raise RuleError("meta: expression too long")
    index = 0

    def peek() -> int:
        return tokens[index][0] if index < len(tokens) else 0

    def take() -> tuple[int, str]:
        nonlocal index
        if index >= len(tokens):
            raise RuleError("meta: expression ends too early")
        index += 1
        return tokens[index - 1]

    def disjunction(depth: int) -> Expr:
        node = conjunction(depth)
        while peek() == 2:
            take()
            node = ("||", node, conjunction(depth))
        return node

    def conjunction(depth: int) -> Expr:
        node = unary(depth)
        while peek() == 1:
            take()
            node = ("&&", node, unary(depth))
        return node

    def unary(depth: int) -> Expr:
        if depth > 50:
            raise RuleError("meta: nested too deeply")
        kind, value = take()
        if kind == 3:
            return ("!", unary(depth + 1))
        if kind == 4:
            node = disjunction(depth + 1)
            if take()[0] != 5:
                raise RuleError("meta: missing ')'")
            return node
        if kind == 6:
            return value
        raise RuleError(f"meta: unexpected {value!r}")

    tree = disjunction(0)
    if index != len(tokens):
        raise RuleError(f"meta: unexpected {tokens[index][1]!r}")
    return tree


def names_in(expr: Expr) -> set[str]:
    if isinstance(expr, str):
        return {expr}
    return set().union(*(names_in(e) for e in expr[1:]))


def evaluate(expr: Expr, hits: Callable[[str], bool]) -> bool:
    if isinstance(expr, str):
        return hits(expr)
    if expr[0] == "!":
        return not evaluate(expr[1], hits)
    if expr[0] == "&&":
        return evaluate(expr[1], hits) and evaluate(expr[2], hits)
    return evaluate(expr[1], hits) or evaluate(expr[2], hits)


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
        }
    )


def fold(text: str) -> str:
    """Case-fold ``text`` the way ``required_literals`` folds its literals."""
    if "\u0130" in text or "\u0131" in text:  # rare; translate() is slow
        text = text.translate(_FOLD_FIX)
    return text.casefold()


Needles = tuple[tuple[str, ...], ...]
_MAX_EXPANSION = 32  # literal strings a small character class may multiply into
_MAX_GROUPS = 3


def required_literals(regex: re.Pattern[str]) -> tuple[Needles, bool]:
    """``(groups, folded)``: every match of ``regex`` contains, for each group,
    at least one of its literals.

    ``folded`` says the literals are case-folded (the pattern ignores case
    somewhere) and must be looked for in folded text. ``()`` when nothing is
    known (only classes, lookarounds, optional parts...): the rule then
    always runs its regex. Conservative by construction: only literals,
    small classes of literal characters (``[- ]``), groups, alternations
    whose every branch requires a literal (their best literal set each), and
    repeats of at least one are read. Folded literals must be ASCII (a group
    that is not is dropped). Up to three groups are kept (see below).
    """
    try:
        tree = _sre.parse(regex.pattern, regex.flags)
        groups = _literals(tree.data)
        # Global IGNORECASE, or a scoped (?i...) group anywhere (a false alarm only folds).
        scoped = re.search(r"\(\?[a-zA-Z]*i", regex.pattern) is not None
        folded = bool(tree.state.flags & re.IGNORECASE) or scoped
    except Exception:  # the private parser changed: fall back to plain regexes
        return (), False
    found: set[tuple[str, ...]] = set()
    for group in groups:
        needles = {fold(n) for n in group} if folded else group
        if needles and all(needles) and (not folded or all(n.isascii() for n in needles)):
            found.add(tuple(sorted(needles)))
    # Each group costs a scan of the text: keep up to three whose literals are
    # at least three characters long (short ones occur everywhere), else the best.
    ranked = sorted(found, key=lambda g: (-min(map(len, g)), g))
    kept = [g for g in ranked if min(map(len, g)) >= 3][:_MAX_GROUPS] or ranked[:1]
    return tuple(kept), folded


def _best(groups: list[set[str]]) -> set[str]:
    """The most selective-looking group: the one whose shortest literal is longest."""
    return max(groups, key=lambda g: min(len(n) for n in g))


def _literals(items: Any) -> list[set[str]]:
    """Required literal groups of a parsed sequence ([] when none is known)."""
    groups: list[set[str]] = []
    partial = [""]  # the literal strings the current run may be

    def flush() -> None:
        nonlocal partial
        if partial[0]:
            groups.append(set(partial))
        partial = [""]

    for op, av in items:
        if op is _sre.LITERAL:
            partial = [p + chr(av) for p in partial]
            continue
        if (
            op is _sre.IN
            and all(kind is _sre.LITERAL for kind, _ in av)
            and len(partial) * len(av) <= _MAX_EXPANSION
        ):
            partial = [p + chr(code) for p in partial for _, code in av]
            continue
        flush()
        if op is _sre.SUBPATTERN:
            groups.extend(_literals(av[3]))
        elif op is _sre.ATOMIC_GROUP:
            groups.extend(_literals(av))
        elif op is _sre.BRANCH:
            parts = [_literals(branch) for branch in av[1]]
            if all(parts):
                groups.append(set().union(*(_best(part) for part in parts)))
        elif op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT, _sre.POSSESSIVE_REPEAT) and av[0] >= 1:
            groups.extend(_literals(av[2]))
    flush()
    return groups


def load_rules(sources: Iterable[tuple[str, str]]) -> tuple[list[Rule], list[str]]:
    """(rules in evaluation order, error lines) from (label, TOML text) pairs."""
    rules: dict[str, Rule] = {}
    errors: list[str] = []
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
    return _order_metas(rules, errors), errors


def _order_metas(rules: dict[str, Rule], errors: list[str]) -> list[Rule]:
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


class RulesCheck(Check):
    name: ClassVar[str] = "rules"
    stage: ClassVar[str] = Stage.DATA

    def __init__(self, rules: list[Rule]) -> None:
        self.rules = rules

    async def run(self, tx: Transaction, evidence: Evidence) -> None:
        for rule in match(self.rules, tx):
            if not rule.name.startswith("__"):
                evidence.add(rule.name, rule.score, rule.description[:80])


def match(rules: list[Rule], tx: Transaction) -> list[Rule]:
    """The rules that hit ``tx``, in evaluation order (same as running every regex)."""
    message = tx.message
    headers: dict[str, list[str]] = {}
    for field_name, value in message.headers:
        headers.setdefault(field_name.lower(), []).append(value)
    texts = _Texts(tx, headers)
    hits: dict[str, bool] = {}
    found: list[Rule] = []
    for rule in rules:
        if rule.kind == "meta":
            hit = evaluate(rule.expr, lambda n: hits.get(n, False))
        else:
            assert rule.regex is not None
            values = texts.values(rule)
            if rule.needles and values:
                haystack = texts.haystack(rule, values)
                if not all(any(n in haystack for n in group) for group in rule.needles):
                    values = []  # no required literal anywhere: the regex cannot match
            search = rule.regex.search
            hit = any(search(v) for v in values)
        hits[rule.name] = hit
        if hit:
            found.append(rule)
    return found


class _Texts:
    """The texts rules search, each made (and case-folded) at most once per message."""

    def __init__(self, tx: Transaction, headers: dict[str, list[str]]) -> None:
        self.message = tx.message
        self.headers = headers
        self.made: dict[str, list[str]] = {}
        self.joined: dict[tuple[str, bool], str] = {}

    def values(self, rule: Rule) -> list[str]:
        key = f"header:{rule.header}" if rule.kind == "header" else rule.kind
        made = self.made.get(key)
        if made is None:
            made = self.made[key] = self._make(rule)
        return made

    def _make(self, rule: Rule) -> list[str]:
        message = self.message
        if rule.kind == "header":
            if rule.header == "all":
                return [f"{n}: {v}" for n, v in message.headers]
            return self.headers.get(rule.header, [])
        if rule.kind == "body":
            return ["\n".join((message.subject, message.text, message.html_text))[:BODY_LIMIT]]
        if rule.kind == "uri":
            return list(message.urls)
        return [message.body[:RAW_LIMIT].decode("latin-1")]

    def haystack(self, rule: Rule, values: list[str]) -> str:
        key = (f"header:{rule.header}" if rule.kind == "header" else rule.kind, rule.folded)
        text = self.joined.get(key)
        if text is None:
            text = values[0] if len(values) == 1 else "\n".join(values)
            text = self.joined[key] = fold(text) if rule.folded else text
        return text


def rule_sources(bundled: bool, files: Iterable[str]) -> list[tuple[str, str]]:
    sources: list[tuple[str, str]] = []
    if bundled:
        text = resources.files("mailmoat").joinpath("data/rules.toml").read_text("utf-8")
        sources.append(("mailmoat/data/rules.toml", text))
    for path in files:
        try:
            sources.append((path, Path(path).read_text(encoding="utf-8")))
        except (OSError, UnicodeError) as exc:
            log.error("rules file %s unreadable, skipped: %s", path, exc)
    return sources


def build(services: Services) -> list[Check]:
    config = services.config.rules
    rules, errors = load_rules(rule_sources(config.bundled, config.files))
    for error in errors:
        log.error("%s", error)
    return [RulesCheck(rules)] if rules else []
