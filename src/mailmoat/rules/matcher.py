"""The matcher: a prepared ``RuleSet`` and the per-message texts it searches.

Contract: ``RuleSet(rules)`` takes rules in evaluation order (plain rules,
then metas each after what it uses) and prepares them once: plain rules are
grouped by the haystack whose literals they test (a text, folded or not),
each haystack tests the first literal group of all its rules in one pass,
and only the rules one of whose first literals occurs go on to their other
groups and their regex. Metas are compiled against the rules before them.
``RuleSet.match(tx)`` returns the rules that hit, in evaluation order,
exactly as running every regex would. Body rules search the first
``BODY_LIMIT`` characters of the decoded text, raw-body rules the first
``RAW_LIMIT`` bytes. Nothing here raises on odd message content.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import compress
from typing import Any, overload

from mailmoat.core.transaction import Transaction
from mailmoat.rules.meta import Hits, compile_meta
from mailmoat.rules.model import Rule
from mailmoat.rules.prefilter import (
    Haystack,
    Needles,
    Scan,
    fold_for_literals,
    occurrences,
    search_at,
)

RAW_LIMIT = 256 * 1024
BODY_LIMIT = 256 * 1024


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
        scans: dict[str, dict[bool, Scan]] = {}  # text -> folded -> scan
        index: dict[str, int] = {}  # name -> position of the latest rule of that name so far
        for position, rule in enumerate(self._rules):
            if rule.kind == "meta":
                self._metas.append((position, compile_meta(rule.expr, index)))
            else:
                step = Step.of(position, rule)
                by_fold = scans.setdefault(step.text, {})
                by_fold.setdefault(rule.folded, Scan(rule.folded)).add(step)
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
        texts = Texts(tx.message, self._fields)
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

    @classmethod
    def of(cls, position: int, rule: Rule) -> Step:
        assert rule.regex is not None
        text = f"header:{rule.header}" if rule.kind == "header" else rule.kind
        # The leading literals are a required group too. Fewest literals first:
        # the cheapest test (and the one all rules of the text share a pass for).
        groups = sorted({*rule.needles, rule.lead} - {()}, key=lambda g: (len(g), g))
        first = groups[0] if groups else ()
        rest = tuple(g for g in groups[1:] if not set(first) <= set(g))
        return cls(position, rule, rule.regex, text, rule.lead, first, rest)

    def matches(self, values: list[str], haystack: Haystack | None) -> bool:
        """Whether the rule hits ``values``, one of its ``first`` literals
        being known to occur in ``haystack`` (None: it has no literals)."""
        if haystack is not None:
            for group in self.rest:
                if not haystack.has_any(group):
                    return False  # no literal of the group: the regex cannot match
            if self.lead and haystack.aligned:  # a match can only start where a lead does
                return search_at(self.regex, values[0], occurrences(haystack, self.lead))
        if len(values) == 1:
            return self.regex.search(values[0]) is not None
        return any(map(self.regex.search, values))


class Texts:
    """The texts rules search, each made (and case-folded) at most once per message."""

    def __init__(self, message: Any, fields: frozenset[str]) -> None:
        self.message = message
        self.fields = fields  # the header fields rules name and the Subject, lower case
        self.made: dict[str, list[str]] = {}
        self.haystacks: dict[tuple[str, bool], Haystack] = {}

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

    def haystack(self, key: str, folded: bool) -> Haystack:
        """The haystack of text ``key`` (made already), folded or not."""
        made = self.haystacks.get((key, folded))
        if made is None:
            values = self.made[key]
            text = values[0] if len(values) == 1 else "\n".join(values)
            haystack = fold_for_literals(text) if folded else text
            aligned = len(values) == 1 and len(haystack) == len(text)
            made = self.haystacks[(key, folded)] = Haystack(haystack, aligned)
        return made
