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
"viagra" or "cialis"; ``bitcoin.{0,9}wallet`` needs both), and its *leading
literals* (``leading_literals``): strings one of which every match starts
with (here "viagra" or "cialis" again). A rule with a group none of whose
literals occurs in its text is a miss without running the regex; a
substring test is far cheaper than a regex scan, and on most mail no
literal occurs. ``load_rules`` returns a ``RuleSet``, prepared once: per
text (and case folding), the group with the fewest literals of every rule
is tested in one pass, and only rules with a literal found go on to their
other groups and their regex. Where the text is a single value that
folding left the same length, a regex with leading literals is only tried
where one occurs (``_TRIES`` of them, then one search from the next on).
Case-insensitive rules compare case-folded literals (ASCII only) with the
case-folded text, folded once per message (``fold_for_literals``). Metas
are compiled once, against the rules
before them. The result is the same as running every regex. Body rules
search the first ``BODY_LIMIT`` characters of the decoded text, raw-body
rules the first ``RAW_LIMIT`` bytes.

Failure mode: a broken rule (bad regex, unknown key, meta naming an unknown
rule, a cycle) is logged as ``file:line: rule NAME: problem`` and skipped,
never a crash; a file that is not valid TOML is logged and skipped whole.
"""

from __future__ import annotations

import heapq
import importlib
import logging
import re
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from itertools import compress
from operator import itemgetter
from pathlib import Path
from typing import Any, ClassVar, overload

from mailmoat.checks.base import Check, Services
from mailmoat.checks.spec import CheckSpec
from mailmoat.core.symbols import Evidence, Stage
from mailmoat.core.transaction import Transaction

log = logging.getLogger("mailmoat.checks.rules")

# The symbols are the loaded rules' names (``mailmoat.checks.catalog``).
SPEC = CheckSpec(
    name="rules",
    stages=(Stage.DATA,),
    summary="The loaded rule set: bundled TOML rules, SpamAssassin rules, the admin's files.",
)

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
# The non-ASCII characters whose ``fold`` has an ASCII character in it (all of
# them: tests/checks/test_rules.py checks), e.g. "ß" -> "ss", "\u212a" (Kelvin) -> "k".
_FOLDS_TO_ASCII = (
    "\u00df\u0130\u0131\u0149\u017f\u01f0\u1e96\u1e97\u1e98\u1e99\u1e9a\u1e9e\u212a"
    "\ufb00\ufb01\ufb02\ufb03\ufb04\ufb05\ufb06"
)

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
    # Every match starts with one of these (case-folded when ``folded``).
    lead: tuple[str, ...] = ()


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
            "lead": leading_literals(regex, folded),
        }
    )


def fold(text: str) -> str:
    """Case-fold ``text`` the way ``required_literals`` folds its literals."""
    if text.isascii():
        return text.lower()  # the same, several times faster
    if "\u0130" in text or "\u0131" in text:  # rare; translate() is slow
        text = text.translate(_FOLD_FIX)
    return text.casefold()


def fold_for_literals(text: str) -> str:
    """``fold(text)`` as far as ASCII strings (as folded literals all are) are
    concerned: each of their occurrences in ``fold(text)`` is in the result
    too, at the same place when folding kept the length.

    Unless ``text`` holds one of the few non-ASCII characters that fold to
    something ASCII, only its ASCII characters can make up an ASCII string
    in ``fold(text)``: they are lowered and every other character becomes
    "?", a fraction of the cost of ``casefold`` (which may add an occurrence
    of a literal with "?" in it: only a regex is run for nothing).
    """
    if text.isascii():
        return text.lower()  # = fold(text)
    if any(map(text.__contains__, _FOLDS_TO_ASCII)):
        return fold(text)
    return text.encode("ascii", "replace").lower().decode("ascii")


Needles = tuple[tuple[str, ...], ...]
_MAX_EXPANSION = 32  # literal strings a small character class may multiply into
_MAX_GROUPS = 3
_TRIES = 8  # leading-literal places tried one by one before a plain search


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
        longer = _extended(partial, op, av)
        if longer is not None:
            partial = longer
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


def leading_literals(regex: re.Pattern[str], folded: bool) -> tuple[str, ...]:
    """Strings one of which every match of ``regex`` starts with; ``()`` when unknown.

    Read like ``required_literals``, from the start of the pattern: literals
    and small literal classes, zero-width assertions skipped, then at most one
    group, alternation (every branch known) or repeat of at least one. Folded
    like the needles when ``folded`` (and then ASCII only). A string that
    starts with another one of the set is dropped: its matches start where
    the shorter one's do. With these the regex need only be tried where one
    of them occurs, not all along the text.
    """
    try:
        starts = set(_leading(_sre.parse(regex.pattern, regex.flags).data))
    except Exception:  # the private parser changed: no shortcut
        return ()
    if folded:
        starts = {fold(s) for s in starts}
    if not all(len(s) >= 3 and (s.isascii() or not folded) for s in starts):
        return ()  # short ones occur everywhere
    return tuple(sorted(s for s in starts if not any(s != t and s.startswith(t) for t in starts)))


def _extended(partial: list[str], op: Any, av: Any) -> list[str] | None:
    """The literal strings ``partial`` grown by one parsed item when that
    item is a literal character or a small class of them; else None."""
    if op is _sre.LITERAL:
        return [p + chr(av) for p in partial]
    if (
        op is _sre.IN
        and all(kind is _sre.LITERAL for kind, _ in av)
        and len(partial) * len(av) <= _MAX_EXPANSION
    ):
        return [p + chr(code) for p in partial for _, code in av]
    return None


def _leading(items: Any) -> list[str]:
    """Strings one of which every match of a parsed sequence starts with ([]: unknown)."""
    partial = [""]
    for op, av in items:
        longer = _extended(partial, op, av)
        if longer is not None:
            partial = longer
            continue
        if op in (_sre.AT, _sre.ASSERT, _sre.ASSERT_NOT):
            continue  # zero width: the next item starts where this one does
        if op is _sre.SUBPATTERN:
            inner = _leading(av[3])
        elif op is _sre.ATOMIC_GROUP:
            inner = _leading(av)
        elif op is _sre.BRANCH:
            branches = [_leading(branch) for branch in av[1]]
            inner = [s for branch in branches for s in branch] if all(branches) else []
        elif op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT, _sre.POSSESSIVE_REPEAT) and av[0] >= 1:
            inner = _leading(av[2])
        else:
            inner = []
        if inner and len(partial) * len(inner) <= _MAX_EXPANSION:
            partial = [p + s for p in partial for s in inner]
        break
    return partial if partial[0] else []


def load_rules(sources: Iterable[tuple[str, str]]) -> tuple[RuleSet, list[str]]:
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
    return RuleSet(_order_metas(rules, errors)), errors


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

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = rules if isinstance(rules, RuleSet) else RuleSet(rules)

    async def run(self, tx: Transaction, evidence: Evidence) -> None:
        for rule in self.rules.match(tx):
            if not rule.name.startswith("__"):
                evidence.add(rule.name, rule.score, rule.description[:80])


def match(rules: Sequence[Rule], tx: Transaction) -> list[Rule]:
    """The rules that hit ``tx``, in evaluation order (same as running every regex).

    A ``RuleSet`` (what ``load_rules`` returns) is prepared once; any other
    sequence is prepared on each call.
    """
    return (rules if isinstance(rules, RuleSet) else RuleSet(rules)).match(tx)


class RuleSet(Sequence[Rule]):
    """Rules in evaluation order, prepared for matching.

    Plain rules are grouped by the haystack whose literals they test (a text,
    folded or not): each haystack tests the first literal group of all its
    rules in one pass, and only the rules one of whose first literals occurs
    go further. Metas are compiled against the rules before them.
    """

    def __init__(self, rules: Iterable[Rule]) -> None:
        self._rules = tuple(rules)
        self._metas: list[tuple[int, Hits]] = []
        scans: dict[str, dict[bool, _Scan]] = {}  # text -> folded -> scan
        index: dict[str, int] = {}  # name -> position of the latest rule of that name so far
        for position, rule in enumerate(self._rules):
            if rule.kind == "meta":
                self._metas.append((position, compile_meta(rule.expr, index)))
            else:
                step = _Step.of(position, rule)
                by_fold = scans.setdefault(step.text, {})
                by_fold.setdefault(rule.folded, _Scan(rule.folded)).add(step)
            index[rule.name] = position
        self._scans = [(text, tuple(by_fold.values())) for text, by_fold in scans.items()]
        self._fields = frozenset(
            {"subject"} | {r.header for r in self._rules if r.kind == "header"} - {"all"}
        )

    @overload
    def __getitem__(self, index: int) -> Rule: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[Rule, ...]: ...

    def __getitem__(self, index: int | slice) -> Rule | tuple[Rule, ...]:
        return self._rules[index]

    def __len__(self) -> int:
        return len(self._rules)

    def __iter__(self) -> Iterator[Rule]:
        return iter(self._rules)

    def match(self, tx: Transaction) -> list[Rule]:
        """The rules that hit ``tx``, in evaluation order."""
        texts = _Texts(tx.message, self._fields)
        hits = [False] * len(self._rules)
        for text, scans in self._scans:
            values = texts.values(text)
            if not values:
                continue  # nothing to search: no rule of this text can hit
            for scan in scans:
                haystack = texts.haystack(text, scan.folded) if scan.literals else None
                for step in scan.candidates(haystack):
                    if step.matches(values, haystack):
                        hits[step.position] = True
        for position, meta in self._metas:
            hits[position] = meta(hits)
        return list(compress(self._rules, hits))


Hits = Callable[[Sequence[bool]], bool]


def compile_meta(expr: Expr, index: Mapping[str, int]) -> Hits:
    """``expr`` as a function of the hits by position (``index``: name -> position);
    a name not in ``index`` is false, as in ``evaluate``."""
    if isinstance(expr, str):
        if expr not in index:
            return lambda hits: False
        return itemgetter(index[expr])
    if expr[0] == "!":
        inner = compile_meta(expr[1], index)
        return lambda hits: not inner(hits)
    left, right = compile_meta(expr[1], index), compile_meta(expr[2], index)
    if expr[0] == "&&":
        return lambda hits: left(hits) and right(hits)
    return lambda hits: left(hits) or right(hits)


@dataclass(frozen=True, slots=True, eq=False)
class _Step:
    """A plain rule as ``RuleSet.match`` runs it."""

    position: int
    rule: Rule
    regex: re.Pattern[str]
    text: str  # the _Texts key: "header:subject", "header:all", "body", "rawbody", "uri"
    lead: tuple[str, ...]
    first: tuple[str, ...]  # the group tested for all rules of a haystack at once
    rest: Needles  # the other groups, fewest literals first (those ``first`` implies left out)

    @classmethod
    def of(cls, position: int, rule: Rule) -> _Step:
        assert rule.regex is not None
        text = f"header:{rule.header}" if rule.kind == "header" else rule.kind
        # The leading literals are a required group too. Fewest literals first:
        # the cheapest test (and the one all rules of the text share a pass for).
        groups = sorted({*rule.needles, rule.lead} - {()}, key=lambda g: (len(g), g))
        first = groups[0] if groups else ()
        rest = tuple(g for g in groups[1:] if not set(first) <= set(g))
        return cls(position, rule, rule.regex, text, rule.lead, first, rest)

    def matches(self, values: list[str], haystack: _Haystack | None) -> bool:
        """Whether the rule hits ``values``, one of its ``first`` literals
        being known to occur in ``haystack`` (None: it has no literals)."""
        if haystack is not None:
            for group in self.rest:
                if not haystack.has_any(group):
                    return False  # no literal of the group: the regex cannot match
            if self.lead and haystack.aligned:  # a match can only start where a lead does
                return _search_at(self.regex, values[0], _occurrences(haystack, self.lead))
        if len(values) == 1:
            return self.regex.search(values[0]) is not None
        return any(map(self.regex.search, values))


class _Scan:
    """The plain rules of one haystack (a text, folded or not) and the
    literals of their ``first`` groups, tested in one pass."""

    def __init__(self, folded: bool) -> None:
        self.folded = folded
        self.literals: tuple[str, ...] = ()
        self.by_literal: dict[str, list[_Step]] = {}
        self.always: list[_Step] = []  # rules without literals

    def add(self, step: _Step) -> None:
        for literal in step.first:
            self.by_literal.setdefault(literal, []).append(step)
        if not step.first:
            self.always.append(step)
        self.literals = tuple(self.by_literal)

    def candidates(self, haystack: _Haystack | None) -> Iterable[_Step]:
        """The rules that may hit: those one of whose ``first`` literals occurs."""
        if haystack is None:
            return self.always
        found = list(filter(haystack.text.__contains__, self.literals))
        if not found:
            return self.always
        by_literal = self.by_literal
        return dict.fromkeys([*self.always, *(s for literal in found for s in by_literal[literal])])


def _occurrences(haystack: _Haystack, literals: tuple[str, ...]) -> Iterator[int]:
    """Where ``literals`` (none the start of another) occur in ``haystack``, ascending."""
    text = haystack.text
    heap = [(at, s) for s in literals if (at := text.find(s)) >= 0]
    heapq.heapify(heap)
    while heap:
        at, literal = heap[0]
        yield at
        after = text.find(literal, at + 1)
        if after < 0:
            heapq.heappop(heap)
        else:
            heapq.heapreplace(heap, (after, literal))


def _search_at(regex: re.Pattern[str], text: str, starts: Iterator[int]) -> bool:
    """Whether ``regex`` matches ``text`` at one of ``starts`` (ascending; no
    match starts anywhere else): tried one by one, then, after ``_TRIES``
    misses, one search from the next start on."""
    for tries, at in enumerate(starts):
        if tries == _TRIES:
            return regex.search(text, at) is not None
        if regex.match(text, at):
            return True
    return False


class _Texts:
    """The texts rules search, each made (and case-folded) at most once per message."""

    def __init__(self, message: Any, fields: frozenset[str]) -> None:
        self.message = message
        self.fields = fields  # the header fields rules name and the Subject, lower case
        self.made: dict[str, list[str]] = {}
        self.haystacks: dict[tuple[str, bool], _Haystack] = {}

    def values(self, key: str) -> list[str]:
        made = self.made.get(key)
        if made is None:
            made = self._make(key)
        return made

    def _make(self, key: str) -> list[str]:
        message = self.message
        made: list[str]
        if key == "header:all":
            made = [f"{n}: {v}" for n, v in message.headers]
        elif key.startswith("header:"):
            fields: dict[str, list[str]] = {name: [] for name in self.fields}
            for name, value in message.headers:
                found = fields.get(name.lower())
                if found is not None:
                    found.append(value)
            for name, found in fields.items():
                self.made[f"header:{name}"] = found
            return fields.get(key[len("header:") :], [])
        elif key == "body":
            subject = self.values("header:subject")  # message.subject: the first field
            joined = "\n".join((subject[0] if subject else "", message.text, message.html_text))
            made = [joined[:BODY_LIMIT]]
        elif key == "uri":
            made = message.urls
        else:
            offset = message.body_offset  # message.body would copy all of it first
            made = [message.raw[offset : offset + RAW_LIMIT].decode("latin-1")]
        self.made[key] = made
        return made

    def haystack(self, key: str, folded: bool) -> _Haystack:
        """The haystack of text ``key`` (made already), folded or not."""
        made = self.haystacks.get((key, folded))
        if made is None:
            values = self.made[key]
            text = values[0] if len(values) == 1 else "\n".join(values)
            haystack = fold_for_literals(text) if folded else text
            aligned = len(values) == 1 and len(haystack) == len(text)
            made = self.haystacks[(key, folded)] = _Haystack(haystack, aligned)
        return made


class _Haystack:
    """A text as the literal tests see it: the values joined, case-folded for
    folded rules. ``aligned``: its positions are those of the single value
    (folding kept every character one character)."""

    __slots__ = ("aligned", "text")

    def __init__(self, text: str, aligned: bool) -> None:
        self.text = text
        self.aligned = aligned

    def has_any(self, literals: Iterable[str]) -> bool:
        return any(map(self.text.__contains__, literals))


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
