"""A regex narrowed to what it can match in a pure-ASCII text.

Contract: ``ascii_variant(regex)`` returns a regex that finds a match in
exactly the same ASCII strings as ``regex`` (same flags, minus
``re.VERBOSE``), written without the parts only non-ASCII characters can
match: non-ASCII characters leave its classes, an alternative (or a
required part) that needs one goes, an optional one becomes empty. None
when ``regex`` cannot match any ASCII string at all. ``regex`` itself when
nothing is left out, or when it cannot be narrowed safely: without
``re.ASCII`` (Unicode case folding maps some non-ASCII letters onto ASCII
ones), with back-references or conditionals (removing a group would
renumber the others), or with a construct this does not know. Why:
SpamAssassin's look-alike rules (``FUZZY_*``, ReplaceTags) spell each
letter with dozens of UTF-8 sequences and Latin-1 bytes; most texts are
ASCII, where those rules are plain words a multi-pattern engine scans at a
fraction of the cost. Nothing here raises on a pattern it cannot read
(``regex`` itself).
"""

from __future__ import annotations

import importlib
import re
from typing import Any

from mailmoat.rules.prefilter import parsed
from mailmoat.rules.shapes import CATEGORY_ESCAPES

_sre: Any = importlib.import_module("re._parser")
_ASCII_LAST = 0x7F


class _Keep(Exception):
    """The pattern cannot be narrowed: the original is kept."""


def ascii_variant(regex: re.Pattern[str]) -> re.Pattern[str] | None:
    if not regex.flags & re.ASCII:
        return regex
    renderer = _Renderer()
    try:
        source = renderer.sequence(parsed(regex.pattern, regex.flags).data)
    except (_Keep, RecursionError):
        return regex
    except Exception:  # the private parser changed: nothing known
        return regex
    if source is None:
        return None
    if not renderer.narrowed:
        return regex  # nothing left out: the same regex, spelled differently
    try:
        return re.compile(source, regex.flags & ~re.VERBOSE)
    except re.error:
        return regex


class _Renderer:
    """Renders a parse tree for ASCII text; ``narrowed`` once it left something out."""

    def __init__(self) -> None:
        self.narrowed = False

    def sequence(self, items: Any) -> str | None:
        """The items in a row; None when one of them cannot match ASCII text."""
        parts: list[str] = []
        for op, av in items:
            part = self.item(op, av)
            if part is None:
                return None
            parts.append(part)
        return "".join(parts)

    def item(self, op: Any, av: Any) -> str | None:
        sre = _sre
        if op is sre.LITERAL:
            if av <= _ASCII_LAST:
                return _char(av)
            self.narrowed = True
            return None
        if op is sre.NOT_LITERAL:
            return f"[^{_char(av)}]"  # as written: any ASCII character but one
        if op is sre.ANY:
            return "."
        if op is sre.IN:
            return self.klass(av)
        if op is sre.AT:
            return _ANCHORS[av]
        if op is sre.SUBPATTERN:
            return self.group(av)
        if op is sre.BRANCH:
            branches = [found for found in map(self.sequence, av[1]) if found is not None]
            self.narrowed |= len(branches) < len(av[1])
            return f"(?:{'|'.join(branches)})" if branches else None
        if op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT):
            low, high, body = av
            inner = self.sequence(body)
            if inner is None:
                return "" if low == 0 else None  # the part can only be absent
            bound = "" if high is sre.MAXREPEAT else str(high)
            suffix = {sre.MAX_REPEAT: "", sre.MIN_REPEAT: "?"}.get(op, "+")
            return f"(?:{inner}){{{low},{bound}}}{suffix}"
        if op is sre.ATOMIC_GROUP:
            inner = self.sequence(av)
            return None if inner is None else f"(?>{inner})"
        if op in (sre.ASSERT, sre.ASSERT_NOT):
            direction, body = av
            inner = self.sequence(body)
            if inner is None:  # the look-around's part cannot be there
                return None if op is sre.ASSERT else ""
            behind = "<" if direction < 0 else ""
            return f"(?{behind}{'=' if op is sre.ASSERT else '!'}{inner})"
        raise _Keep(str(op))  # back-references, conditionals, anything new

    def group(self, av: Any) -> str | None:
        """A group, not capturing (nothing refers to it: see ``ascii_variant``)."""
        _, add, remove, body = av
        inner = self.sequence(body)
        if inner is None:
            return None
        if not add and not remove:
            return f"(?:{inner})"
        removed = f"-{_flag_letters(remove)}" if remove else ""
        return f"(?{_flag_letters(add)}{removed}:{inner})"

    def klass(self, items: Any) -> str | None:
        """A class: a negated one as written (what it leaves out does not
        matter), a positive one with its ASCII members only (None: none)."""
        sre = _sre
        negated = bool(items) and items[0][0] is sre.NEGATE
        parts: list[str] = []
        for kind, value in items[1:] if negated else items:
            if kind is sre.LITERAL:
                if negated or value <= _ASCII_LAST:
                    parts.append(_char(value))
                else:
                    self.narrowed = True
            elif kind is sre.RANGE:
                low, high = value
                if not negated and high > _ASCII_LAST:
                    high = _ASCII_LAST
                    self.narrowed = True
                if low <= high:
                    parts.append(f"{_char(low)}-{_char(high)}")
            elif kind is sre.CATEGORY and value in _CATEGORIES:
                parts.append(_CATEGORIES[value])
            else:
                raise _Keep(str(kind))
        if negated:
            return f"[^{''.join(parts)}]"
        return f"[{''.join(parts)}]" if parts else None


_ANCHORS: dict[Any, str] = {
    _sre.AT_BEGINNING: "^",
    _sre.AT_BEGINNING_LINE: "^",
    _sre.AT_BEGINNING_STRING: r"\A",
    _sre.AT_END: "$",
    _sre.AT_END_LINE: "$",
    _sre.AT_END_STRING: r"\Z",
    _sre.AT_BOUNDARY: r"\b",
    _sre.AT_NON_BOUNDARY: r"\B",
}
_CATEGORIES = CATEGORY_ESCAPES


def _char(value: int) -> str:
    if value < 0x100:
        return f"\\x{value:02x}"
    return f"\\u{value:04x}" if value < 0x10000 else f"\\U{value:08x}"


def _flag_letters(flags: int) -> str:
    letters = {re.IGNORECASE: "i", re.MULTILINE: "m", re.DOTALL: "s", re.VERBOSE: "x"}
    return "".join(letter for flag, letter in letters.items() if flags & flag)
