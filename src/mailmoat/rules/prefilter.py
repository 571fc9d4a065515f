"""The literal prefilter: what a regex's every match must contain or start
with, and the one-pass scan that tests those literals for many rules.

Contract: at build each regex gets its *required literals* when they can
be read off its parse tree (``required_literals``): groups of strings of
which every match must contain one each (``\\b(?:viagra|cialis)\\b`` needs
"viagra" or "cialis"; ``bitcoin.{0,9}wallet`` needs both), and its *leading
literals* (``leading_literals``): strings one of which every match starts
with. A rule with a group none of whose literals occurs in its text is a
miss without running the regex. Case-insensitive rules compare case-folded
literals (ASCII only) with the case-folded text, folded once per message
(``fold_for_literals``). ``Scan`` tests the first literal group of many
rules in one pass over a ``Haystack``; ``search_at`` tries a regex only
where one of its leading literals occurs (``TRIES`` of them, then one
search from the next on). Conservative by construction: the result is the
same as running every regex. Any surprise in the stdlib's private regex
parser means "no literals known", never an error.
"""

from __future__ import annotations

import functools
import heapq
import importlib
import re
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mailmoat.rules.matcher import Step

# The stdlib's regex parser (stable since 3.11, private, untyped): only read here
# to find required literals; any surprise there means "no literals known".
_sre: Any = importlib.import_module("re._parser")
# Characters whose case folding is not the ASCII letter re's IGNORECASE matches them to.
_FOLD_FIX = {0x130: "i", 0x131: "i"}
# The non-ASCII characters whose ``fold`` has an ASCII character in it (all of
# them: tests/rules/test_prefilter.py checks), e.g. "ß" -> "ss", "\u212a" (Kelvin) -> "k".
FOLDS_TO_ASCII = (
    "\u00df\u0130\u0131\u0149\u017f\u01f0\u1e96\u1e97\u1e98\u1e99\u1e9a\u1e9e\u212a"
    "\ufb00\ufb01\ufb02\ufb03\ufb04\ufb05\ufb06"
)


@functools.lru_cache(maxsize=8192)
def parsed(pattern: str, flags: int) -> Any:
    """The stdlib parser's tree of a regex, parsed once for every reader (read only)."""
    return _sre.parse(pattern, flags)


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
    if any(map(text.__contains__, FOLDS_TO_ASCII)):
        return fold(text)
    return text.encode("ascii", "replace").lower().decode("ascii")


Needles = tuple[tuple[str, ...], ...]
_MAX_EXPANSION = 32  # literal strings a small character class may multiply into
_MAX_GROUPS = 3
TRIES = 8  # leading-literal places tried one by one before a plain search


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
        tree = parsed(regex.pattern, regex.flags)
        groups = _literals(tree.data)
        # Global IGNORECASE, or a scoped (?i...) group anywhere (a false alarm only folds).
        scoped = re.search(r"\(\?[a-zA-Z]*i", regex.pattern) is not None
        folded = bool(tree.state.flags & re.IGNORECASE) or scoped
    except Exception:  # the private parser changed: fall back to plain regexes
        return (), False
    found: set[tuple[str, ...]] = set()
    ascii_only = bool(regex.flags & re.ASCII)  # folds ASCII letters only
    for group in groups:
        if folded and ascii_only and not all(n.isascii() for n in group):
            continue  # "\xdf" is no "ss" to such a regex
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
        starts = set(_leading(parsed(regex.pattern, regex.flags).data))
    except Exception:  # the private parser changed: no shortcut
        return ()
    if folded:
        if regex.flags & re.ASCII and not all(s.isascii() for s in starts):
            return ()
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


class Scan:
    """The plain rules of one haystack (a text, folded or not) and the
    literals of their ``first`` groups, tested in one pass."""

    def __init__(self, folded: bool) -> None:
        self.folded = folded
        self.literals: tuple[str, ...] = ()
        self.by_literal: dict[str, list[Step]] = {}
        self.always: list[Step] = []  # rules without literals

    def add(self, step: Step) -> None:
        for literal in step.first:
            self.by_literal.setdefault(literal, []).append(step)
        if not step.first:
            self.always.append(step)
        self.literals = tuple(self.by_literal)

    def candidates(self, haystack: Haystack | None) -> Iterable[Step]:
        """The rules that may hit: those one of whose ``first`` literals occurs."""
        if haystack is None:
            return self.always
        found = list(filter(haystack.text.__contains__, self.literals))
        if not found:
            return self.always
        by_literal = self.by_literal
        return dict.fromkeys([*self.always, *(s for literal in found for s in by_literal[literal])])


def occurrences(haystack: Haystack, literals: tuple[str, ...]) -> Iterator[int]:
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


def search_at(regex: re.Pattern[str], text: str, starts: Iterator[int]) -> bool:
    """Whether ``regex`` matches ``text`` at one of ``starts`` (ascending; no
    match starts anywhere else): tried one by one, then, after ``TRIES``
    misses, one search from the next start on."""
    for tries, at in enumerate(starts):
        if tries == TRIES:
            return regex.search(text, at) is not None
        if regex.match(text, at):
            return True
    return False


class Haystack:
    """A text as the literal tests see it: the values joined, case-folded for
    folded rules. ``aligned``: its positions are those of the single value
    (folding kept every character one character)."""

    __slots__ = ("aligned", "text")

    def __init__(self, text: str, aligned: bool) -> None:
        self.text = text
        self.aligned = aligned

    def has_any(self, literals: Iterable[str]) -> bool:
        return any(map(self.text.__contains__, literals))
