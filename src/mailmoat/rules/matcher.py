"""The matcher: a prepared ``RuleSet`` and how it runs on one message.

Contract: ``RuleSet(rules)`` takes rules in evaluation order (plain rules,
then metas each after what it uses) and prepares them once. With the
multi-pattern engine (``engine.available()``), the regex rules of each
large SpamAssassin text (bodies, raw bodies, full message, URIs) go into one Hyperscan
database per text, scanned once per message; only the rules it reports are
confirmed with ``re`` on each value. The other rules (headers, negated
rules, patterns the engine refuses, or all of them without the engine) are
grouped by the haystack whose literals they test (a text, folded or not):
each haystack tests the first literal group of all its rules in one pass,
and only the rules one of whose first literals occurs go on to their other
groups and their regex. A regex with a catastrophic-backtracking shape
(``engine.backtracking_risk``) is never run with ``re``: the engine decides
it exactly, or, without the engine, it is left out (``unbounded`` lists
those; the loaders report them). Metas are compiled, all together, against
the rules before each. With ``reported`` (which rules' hits are read
outside, e.g. every rule not named ``__...``), a rule neither reported nor
named, directly or through other metas, by a meta that is, is kept in the
set but never evaluated (``unread`` lists them): its hit could change
nothing. ``match(tx)`` returns the rules that hit, in
evaluation order, exactly as running every regex would; ``match_counts``
also gives each hit count (more than one for rules with ``maxhits`` above
1; unread rules never hit). Nothing here raises on odd message content.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from itertools import compress
from typing import Any, overload

from mailmoat.core.transaction import Transaction
from mailmoat.rules import counters, engine, evals, prechecks
from mailmoat.rules.asciionly import ascii_variant
from mailmoat.rules.enginetext import EngineText, engine_group
from mailmoat.rules.meta import MetaCompiler, build_metas, names_in
from mailmoat.rules.model import Rule
from mailmoat.rules.prefilter import Haystack, Needles, Scan, occurrences, search_at
from mailmoat.rules.texts import (
    ABSENT,
    BODY_LIMIT,
    RAW_LIMIT,
    Texts,
    exists_names,
    header_keys,
)

__all__ = ["BODY_LIMIT", "RAW_LIMIT", "RuleSet", "Step", "match"]


def match(rules: Sequence[Rule], tx: Transaction) -> list[Rule]:
    """The rules that hit ``tx``, in evaluation order (same as running every regex).

    A ``RuleSet`` (what the loaders return) is prepared once; any other
    sequence is prepared on each call.
    """
    return (rules if isinstance(rules, RuleSet) else RuleSet(rules)).match(tx)


class RuleSet(Sequence[Rule]):
    """Rules in evaluation order, prepared for matching (see the module docstring)."""

    def __init__(
        self,
        rules: Iterable[Rule],
        use_engine: bool | None = None,
        reported: Callable[[Rule], bool] | None = None,
    ) -> None:
        self._rules = tuple(rules)
        # Rules nothing reads (not reported, named by no meta that is read):
        # loaded, never evaluated.
        live = _read_names(self._rules, reported)
        self.unread = tuple(r for r in self._rules if live is not None and r.name not in live)
        with_engine = engine.available() if use_engine is None else use_engine
        with_engine = with_engine and engine.available()
        self.unbounded: list[Rule] = []
        metas = MetaCompiler()
        scans: dict[str, dict[bool, Scan]] = {}  # text -> folded -> scan
        for_engine: dict[str, list[Step]] = {}
        index: dict[str, int] = {}  # name -> position of the latest rule of that name so far
        read: set[str] = set()  # the texts the rules search

        def scan(step: Step) -> None:
            by_fold = scans.setdefault(step.text, {})
            by_fold.setdefault(step.rule.folded, Scan(step.rule.folded)).add(step)

        for position, rule in enumerate(self._rules):
            if live is not None and rule.name not in live:
                continue
            if rule.kind == "meta":
                metas.add(position, rule.expr, index)
            else:
                step = Step.of(position, rule)
                read.add(step.text)
                if engine.backtracking_risk(step.regex):
                    try:
                        step = replace(step, exact=engine.Exact(step.regex))
                    except engine.EngineError:
                        self.unbounded.append(rule)
                        index[rule.name] = position
                        continue
                # Its count on a text that is one empty value (an absent header).
                step = replace(step, on_empty=step.count(_EMPTY, None))
                group = engine_group(step.text)
                if with_engine and group and not rule.negate:
                    for_engine.setdefault(group, []).append(step)
                else:
                    scan(step)
            index[rule.name] = position
        self._engines = [EngineText.of(text, steps, scan) for text, steps in for_engine.items()]
        self._scans = []
        # Texts that are one empty value or none (a field exists, a native
        # eval says so): their hits worked out once, applied by field name.
        self._exists: dict[str, list[tuple[tuple[int, int], ...]]] = {}
        self._eval_specs: list[tuple[str, tuple[tuple[int, int], ...]]] = []
        for text, by_fold in scans.items():
            on_empty = _on_empty(by_fold.values())
            kind, _, spec = text.partition(":")
            if kind == "sa-exists":
                for name in exists_names(spec):
                    self._exists.setdefault(name, []).append(on_empty)
            elif kind == "sa-eval":
                self._eval_specs.append((spec, on_empty))
            else:
                self._scans.append((text, tuple(by_fold.values()), on_empty))
        self._fields = frozenset(
            {"subject"}
            | {r.header for r in self._rules if r.kind == "header" and not r.text} - {"all"}
        )
        self._header_keys = header_keys(sorted(read))
        self._meta_source = metas.source()
        self._prepare()

    def _prepare(self) -> None:
        """What is not pickled: the metas' function, the native evals."""
        self._metas = build_metas(self._meta_source)
        self._evals = [(evals.NATIVE[spec], on_empty) for spec, on_empty in self._eval_specs]

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        del state["_metas"], state["_evals"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._prepare()

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

    @property
    def engine_rules(self) -> int:
        """How many rules the multi-pattern engine prefilters or decides."""
        return sum(e.size for e in self._engines)

    def match(self, tx: Transaction) -> list[Rule]:
        """The rules that hit ``tx``, in evaluation order."""
        return [rule for rule, _ in self.match_counts(tx)]

    def match_counts(self, tx: Transaction) -> list[tuple[Rule, int]]:
        """(rule, hit count) of the rules that hit ``tx``, in evaluation order."""
        texts = Texts(tx.message, self._fields, tx)
        texts.make_headers(self._header_keys)
        hits = [0] * len(self._rules)
        for engine_text in self._engines:
            engine_text.run(texts, hits)
        if self._exists:
            exists = self._exists
            for name in texts.field_names():
                for on_empty in exists.get(name, ()):
                    for position, count in on_empty:
                        hits[position] = count
        for native, on_empty in self._evals:
            if native(tx.message, tx):
                for position, count in on_empty:
                    hits[position] = count
        for text, scans, on_empty in self._scans:
            values = texts.values(text)
            if not values:
                continue  # nothing to search: no rule of this text can hit
            if values == _EMPTY:  # a header that exists, an absent one, an eval: known
                for position, count in on_empty:
                    hits[position] = count
                continue
            for scan in scans:
                haystack = texts.haystack(text, scan.folded) if scan.literals else None
                for step in scan.candidates(haystack):
                    hits[step.position] = step.count(values, haystack)
        self._metas(hits)
        # The rules whose count is not 0, each with its count (in C: no
        # Python step per rule).
        return list(zip(compress(self._rules, hits), filter(None, hits), strict=True))


_EMPTY = [""]  # equal to ABSENT, but not it: ``Step.count`` works it out


def _read_names(rules: Sequence[Rule], reported: Callable[[Rule], bool] | None) -> set[str] | None:
    """The names of the rules whose hits are read: the ``reported`` ones and,
    transitively, every rule a read meta names (None: all rules, no predicate)."""
    if reported is None:
        return None
    metas: dict[str, list[Rule]] = {}
    for rule in rules:
        if rule.kind == "meta":
            metas.setdefault(rule.name, []).append(rule)
    live: set[str] = set()
    pending = [rule.name for rule in rules if reported(rule)]
    while pending:
        name = pending.pop()
        if name in live:
            continue
        live.add(name)
        for meta in metas.get(name, ()):
            pending.extend(names_in(meta.expr))
    return live


def _on_empty(scans: Iterable[Scan]) -> tuple[tuple[int, int], ...]:
    """(position, hit count) of the rules of ``scans`` that hit when their
    text is one empty value (each step's ``on_empty``; a rule with literals
    cannot match an empty value, so only those without are looked at)."""
    return tuple((s.position, s.on_empty) for scan in scans for s in scan.always if s.on_empty)


@dataclass(frozen=True, slots=True, eq=False)
class Step:
    """A plain rule as ``RuleSet.match`` runs it."""

    position: int
    rule: Rule
    regex: re.Pattern[str]
    text: str  # the Texts key: "header:subject", "header:all", "body", "rawbody", "uri"
    lead: tuple[str, ...]
    first: tuple[str, ...]  # the group tested for all rules of a haystack at once
    rest: Needles  # the other groups, fewest literals first (those ``first`` implies left out)
    limit: int  # matches counted at most
    # Set for a regex ``re`` must not run (backtracking risk): the engine decides.
    exact: engine.Exact | None = None
    # A cheap test of a value, False only when the regex cannot match it
    # (``prechecks``: a few costly stock rules).
    precheck: Callable[[str], bool] | None = None
    on_empty: int = 0  # the count when the text is ``texts.ABSENT``
    # ``regex`` narrowed to pure-ASCII values (``asciionly``: the same matches
    # there), for the look-alike rules whose alternatives are mostly
    # non-ASCII; None when it cannot match ASCII. Read only when ``narrowed``.
    ascii_regex: re.Pattern[str] | None = None
    narrowed: bool = False
    # The exact match count of one value, without ``re`` (``counters``: a
    # few counting stock rules).
    counter: Callable[[str], int] | None = None

    @classmethod
    def of(cls, position: int, rule: Rule) -> Step:
        assert rule.regex is not None
        text = rule.text or (f"header:{rule.header}" if rule.kind == "header" else rule.kind)
        if rule.negate:  # a miss of the literals is a hit: nothing to skip on
            return cls(position, rule, rule.regex, text, (), (), (), 1)
        # The leading literals are a required group too. Fewest literals first:
        # the cheapest test (and the one all rules of the text share a pass for).
        groups = sorted({*rule.needles, rule.lead} - {()}, key=lambda g: (len(g), g))
        first = groups[0] if groups else ()
        rest = tuple(g for g in groups[1:] if not set(first) <= set(g))
        precheck = prechecks.precheck(rule.regex)
        # Trying a SpamAssassin regex (ASCII) at each place a lead occurs costs
        # more than ``re``'s own search (measured over the corpus); the TOML
        # rules' Unicode regexes gain from it.
        lead = () if text.startswith("sa-") else rule.lead
        narrow = ascii_variant(rule.regex)
        return cls(
            position,
            rule,
            rule.regex,
            text,
            lead,
            first,
            rest,
            rule.maxhits,
            None,
            precheck,
            ascii_regex=narrow,
            narrowed=narrow is not rule.regex,
            counter=counters.counter(rule.regex) if rule.maxhits > 1 else None,
        )

    def regex_for(self, value: str) -> re.Pattern[str] | None:
        """The regex to run on ``value``: the narrowed one when it is ASCII
        (None: no match there)."""
        if self.narrowed and value.isascii():
            return self.ascii_regex
        return self.regex

    def count(self, values: list[str], haystack: Haystack | None) -> int:
        """The rule's hit count on ``values`` (see ``matches``): 0 or 1, up to
        ``limit`` matches for a counting rule; a negated rule hits on no match."""
        if values is ABSENT:  # one empty value (most header texts): known at load
            return self.on_empty
        if self.exact is not None:  # no re: one hit per value that matches
            if haystack is not None and not all(map(haystack.has_any, self.rest)):
                found = 0
            else:
                found = sum(map(self.exact.search, values))
            return int(not found) if self.rule.negate else min(found, self.limit)
        if self.limit > 1:
            if haystack is not None and not all(map(haystack.has_any, self.rest)):
                return 0
            if self.precheck is not None and not any(map(self.precheck, values)):
                return 0
            if self.counter is not None:
                return min(sum(map(self.counter, values)), self.limit)
            found = 0
            for value in values:
                regex = self.regex_for(value)
                if regex is None:
                    continue
                for _ in regex.finditer(value):
                    found += 1
                    if found >= self.limit:
                        return found
            return found
        return int(self.matches(values, haystack) != self.rule.negate)

    def matches(self, values: list[str], haystack: Haystack | None) -> bool:
        """Whether the rule hits ``values``, one of its ``first`` literals
        being known to occur in ``haystack`` (None: it has no literals)."""
        if haystack is not None and self.rest:
            text = haystack.text
            for group in self.rest:
                for literal in group:
                    if literal in text:
                        break
                else:
                    return False  # no literal of the group: the regex cannot match
        if self.precheck is not None and not any(map(self.precheck, values)):
            return False
        if haystack is not None and self.lead and haystack.aligned:
            # A match can only start where a lead does.
            return search_at(self.regex, values[0], occurrences(haystack, self.lead))
        if self.narrowed:
            for value in values:
                regex = self.regex_for(value)
                if regex is not None and regex.search(value) is not None:
                    return True
            return False
        if len(values) == 1:
            return self.regex.search(values[0]) is not None
        return any(map(self.regex.search, values))
