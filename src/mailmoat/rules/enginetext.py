"""The rules the multi-pattern engine takes, one text (or group of texts) at a time.

Contract: ``engine_group(text)`` names the engine group of a rule's text
("" when the engine does not take that text: the TOML rules' texts, the
``sa-exists``/``sa-eval`` ones). ``EngineText.of(group, steps, fallback)``
prepares the plain rules (``matcher.Step``) of one group: those the
engine decides exactly or prefilters, the others handed to ``fallback``
(the pure-Python path). ``run(texts, hits)`` sets, for one message, the hit
count of each of its rules in ``hits`` (by position), exactly as running
each rule's regex on its own text would. Nothing here raises on odd
message content.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from mailmoat.rules import engine, lines
from mailmoat.rules.texts import Texts

if TYPE_CHECKING:
    from mailmoat.rules.matcher import Step

# Texts large enough that one engine scan beats per-rule literal tests. Only
# SpamAssassin's byte texts: the engine scans bytes with ASCII semantics, which
# is not a superset of the Unicode matching of the TOML rules.
ENGINE_TEXTS = frozenset({"sa-body", "sa-body-nosubject", "sa-rawbody", "sa-full", "sa-uri"})
# SpamAssassin's header texts, most of them small: one scan over all of them
# (joined) finds the few header rules worth confirming on their own text. The
# large ones (every header, the Received chain, the relays) are scanned apart,
# each with only its own rules: a scan costs about its length times the rules.
HEADERS = "sa-header:*"
# The texts that are always one value (besides the header texts): the
# engine decides their single-hit rules exactly, one scan of the value.
ONE_VALUE = frozenset({"sa-full"})
_LARGE_HEADERS = {
    "all": "all",
    "received": "received",
    "x-spam-relays-external": "relays",
    "x-spam-relays-untrusted": "relays",
}


Gate = tuple[tuple[str, ...], tuple[str, ...]]
# A whole-value database: (text, database, (position, count) when the text
# is empty, literal gate).
Whole = tuple[str, engine.Prefilter, tuple[tuple[int, int], ...], Gate | None]
# Literals tested at most before a scan of a whole value: beyond, the tests
# cost about what the scan does.
GATE_LITERALS = 4


def literal_gate(steps: list[Step]) -> Gate | None:
    """The literals (as they are, then case-folded) of which a value must
    hold one for any of ``steps`` to match it: each step's ``first`` group
    (every match holds one of its literals). None when a step has none (a
    negated rule, a regex without a required literal) or when there are more
    than ``GATE_LITERALS``."""
    plain: set[str] = set()
    folded: set[str] = set()
    for step in steps:
        if not step.first:
            return None
        (folded if step.rule.folded else plain).update(step.first)
    if len(plain) + len(folded) > GATE_LITERALS:
        return None
    return tuple(sorted(plain)), tuple(sorted(folded))


def engine_group(text: str) -> str:
    if text in ENGINE_TEXTS:
        return text
    if not text.startswith("sa-header:"):
        return ""
    large = _LARGE_HEADERS.get(text[len("sa-header:") :].split(":")[0].lower())
    return f"{HEADERS}{large}" if large else HEADERS


class EngineText:
    """The rules of one text (or of all SpamAssassin header texts) the engine
        prefilters (``engine.Prefilter``: one scan per database over the text,
        or over the header texts joined); only the rules it reports run their
        regex, each on its own text. The engine decides some rules exactly: the
        single-hit rules of a line text (``decided``, over the lines joined) and
        those of the header texts and the full message, each one value
        (``whole``: per text present,
        one scan of its value; an empty one gives each rule's ``on_empty``, and
    none when the value holds none of the few literals one of which each rule
    needs: ``literal_gate``). A
        line text with non-ASCII lines is scanned as two parts, its ASCII lines
        and the others, so that most of it goes through the engine's smaller
        ASCII databases."""

    def __init__(
        self,
        group: str,
        steps: dict[int, Step],
        prefilter: engine.Prefilter,
        decided: engine.Prefilter | None,
        whole: tuple[Whole, ...] = (),
    ) -> None:
        self.group = group
        self.steps = steps
        self.prefilter = prefilter
        self.decided = decided
        self.whole = whole
        self.line_text = group in lines.LINE_TEXTS
        # One search over the lines joined (``lines``) for a rule of a line
        # text (its narrowed regex when it has one: used on ASCII lines only).
        self.line_regexes: dict[int, re.Pattern[str] | None] = {}
        self.size = len(steps) + (len(decided.accepted) if decided else 0)
        self.size += sum(len(database.accepted) for _, database, _, _ in whole)
        self.keys = tuple(dict.fromkeys(step.text for step in steps.values()))

    @classmethod
    def of(cls, group: str, steps: list[Step], fallback: Callable[[Step], None]) -> EngineText:
        decided = None
        if group in lines.LINE_TEXTS:
            # A rule that hits once at most on a line text: the engine decides it.
            single = [(step.position, step.regex) for step in steps if step.limit == 1]
            decided = engine.Prefilter(single, lines=True)
            steps = [step for step in steps if step.position not in decided.accepted]
        whole: list[Whole] = []
        if group.startswith(HEADERS) or group in ONE_VALUE:
            # A header text is one value: the engine decides a single-hit rule
            # on it exactly, one scan per text (none when it is empty).
            by_text: dict[str, list[Step]] = {}
            for step in steps:
                if step.limit == 1:
                    by_text.setdefault(step.text, []).append(step)
            for text, of_text in by_text.items():
                database = engine.Prefilter([(s.position, s.regex) for s in of_text], whole=True)
                if database.accepted:
                    empty = tuple(
                        (s.position, s.on_empty)
                        for s in of_text
                        if s.position in database.accepted and s.on_empty
                    )
                    accepted = [s for s in of_text if s.position in database.accepted]
                    whole.append((text, database, empty, literal_gate(accepted)))
                    steps = [step for step in steps if step.position not in database.accepted]
        prefilter = engine.Prefilter((step.position, step.regex) for step in steps)
        taken: dict[int, Step] = {}
        for step in steps:
            if step.position in prefilter.accepted:
                taken[step.position] = step
            else:
                fallback(step)  # refused by the engine: the pure-Python path
        return cls(group, taken, prefilter, decided, tuple(whole))

    @staticmethod
    def ascii_apart(lines: list[str]) -> list[bytes]:
        """The lines of a line text joined in two parts, the ASCII lines and the
        others (empty parts left out): no rule's match spans two lines, and the
        engine scans ASCII data with smaller databases (``engine.Prefilter``)."""
        plain = [line for line in lines if line.isascii()]
        other = [line for line in lines if not line.isascii()]
        parts = ["\n".join(part) for part in (plain, other) if part]
        return [part.encode("latin-1", "replace") for part in parts]

    def run(self, texts: Texts, hits: list[int]) -> None:
        for text, database, on_empty, gate in self.whole:
            (value,) = texts.values(text)  # a SpamAssassin header text: one value
            if not value:  # absent or empty: known at load
                for position, count in on_empty:
                    hits[position] = count
                continue
            if gate is not None:
                as_is, folded = gate
                if not any(map(value.__contains__, as_is)) and not (
                    folded and texts.haystack(text, True).has_any(folded)
                ):
                    continue  # none of the literals one of which each rule needs
            for position in database.scan(value.encode("latin-1", "replace")):
                hits[position] = 1
        if not self.steps and self.decided is None:
            return
        if self.group.startswith(HEADERS):
            # Distinct values only: the decoded and raw forms of a field are
            # often the same, and a rule's match needs its text once.
            joined = "\n".join(dict.fromkeys(v for key in self.keys for v in texts.values(key)))
        elif texts.values(self.group):
            joined = texts.joined(self.group)
        else:
            return
        data = joined.encode("latin-1", "replace")
        plain = data.isascii()
        parts = [data]
        if self.line_text and not plain:
            parts = self.ascii_apart(texts.values(self.group))
        if self.decided is not None:
            for part in parts:
                for position in self.decided.scan(part):
                    hits[position] = 1
        found = self.prefilter.scan(parts[0])
        for part in parts[1:]:
            found |= self.prefilter.scan(part)
        for position in found:
            step = self.steps[position]
            line_regex = None
            if (
                self.line_text
                and step.exact is None
                and step.limit == 1
                and (plain or not step.narrowed)
            ):
                # Lines with non-ASCII ones among them: a look-alike rule is
                # searched line by line, each ASCII line with its narrowed regex.
                if position not in self.line_regexes:  # compiled on first use: few are
                    regex = step.ascii_regex if step.narrowed else step.regex
                    self.line_regexes[position] = regex and lines.line_regex(regex)
                if step.narrowed and step.ascii_regex is None:
                    continue  # it cannot match ASCII lines
                line_regex = self.line_regexes[position]
            if line_regex is not None:
                verdict = lines.decide(line_regex, joined)
                if verdict is not None:
                    hits[position] = int(verdict)
                    continue
            values = texts.values(step.text)
            haystack = None
            if step.rest or step.lead:
                haystack = texts.haystack(step.text, step.rule.folded)
            hits[position] = step.count(values, haystack)
