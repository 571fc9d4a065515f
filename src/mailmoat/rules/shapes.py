"""The shapes of a regex that matter to the engine, read off its parse tree.

Contract: ``backtracking_risk(regex)`` says whether a regex has the shape
that makes ``re`` backtrack exponentially (a repeat of unbounded length
around another repeat or an alternation, unless each iteration ends at a
delimiter its variable parts cannot match); ``newline_after_caret(regex)``
whether a ``^`` is followed by something that can match a newline;
``chars_as_written(op, av)`` the byte values one parsed single-character
item matches. Read from the stdlib's private parser: any surprise there
means the cautious answer (risky, newline possible), never an error.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

from mailmoat.rules.prefilter import parsed

_sre: Any = importlib.import_module("re._parser")
_UNBOUNDED = 10  # a repeat of more than this many counts as unbounded


def backtracking_risk(regex: re.Pattern[str]) -> bool:
    """Whether ``regex`` nests a variable repeat or an alternation inside a
    repeat of unbounded length (``(a+)+``, ``(\\w+\\s?)*``, ``(a|ab)*``)."""
    try:
        tree = parsed(regex.pattern, regex.flags)
    except Exception:  # the private parser changed: assume the worst
        return True
    return _risky(tree.data)


def _variable(items: Any) -> bool:
    """Whether a parsed sequence has a repeat or an alternation in it."""
    for op, av in items:
        if op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT) and av[0] != av[1]:
            return True
        if op is _sre.BRANCH:
            return True
        if op is _sre.SUBPATTERN and _variable(av[3]):
            return True
        if op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT) and _variable(av[2]):
            return True
        if op in (_sre.ASSERT, _sre.ASSERT_NOT) and _variable(av[1]):
            return True
    return False


def _risky(items: Any) -> bool:
    for op, av in items:
        if op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT):
            unbounded = av[1] is _sre.MAXREPEAT or av[1] > _UNBOUNDED
            if (unbounded and _variable(av[2]) and not _delimited(av[2])) or _risky(av[2]):
                return True
        elif op is _sre.SUBPATTERN:
            if _risky(av[3]):
                return True
        elif op is _sre.BRANCH:
            if any(_risky(branch) for branch in av[1]):
                return True
        elif op in (_sre.ASSERT, _sre.ASSERT_NOT) and _risky(av[1]):
            return True
    return False


_ALL = frozenset(range(256))
_CATEGORIES: dict[Any, frozenset[int]] = {}
# A parsed character category and the escape that writes it.
CATEGORY_ESCAPES: dict[Any, str] = {
    _sre.CATEGORY_DIGIT: r"\d",
    _sre.CATEGORY_NOT_DIGIT: r"\D",
    _sre.CATEGORY_SPACE: r"\s",
    _sre.CATEGORY_NOT_SPACE: r"\S",
    _sre.CATEGORY_WORD: r"\w",
    _sre.CATEGORY_NOT_WORD: r"\W",
}


def _category(code: Any) -> frozenset[int]:
    if code not in _CATEGORIES:
        probe = CATEGORY_ESCAPES.get(code)
        found = _ALL if probe is None else {c for c in _ALL if re.match(probe, chr(c), re.A)}
        _CATEGORIES[code] = frozenset(found)
    return _CATEGORIES[code]


def _chars(op: Any, av: Any) -> frozenset[int] | None:
    """The byte values one parsed single-character item may match, closed
    under ASCII case (None: not a single-character item). Over-approximated:
    a larger set only makes ``_delimited`` say no more often."""
    found = chars_as_written(op, av)
    if found is None:
        return None
    letters = {ord(chr(c).swapcase()) for c in found if chr(c).isascii() and chr(c).isalpha()}
    return found | letters


def chars_as_written(op: Any, av: Any) -> frozenset[int] | None:
    if op is _sre.LITERAL:
        return frozenset({av}) if av < 256 else frozenset()
    if op is _sre.NOT_LITERAL:
        return _ALL - {av}
    if op is _sre.ANY:
        return _ALL
    if op is _sre.IN:
        found: set[int] = set()
        negate = False
        for kind, value in av:
            if kind is _sre.NEGATE:
                negate = True
            elif kind is _sre.LITERAL:
                found.add(value)
            elif kind is _sre.RANGE:
                found.update(range(value[0], min(value[1], 255) + 1))
            elif kind is _sre.CATEGORY:
                found |= _category(value)
            else:
                return _ALL
        return _ALL - found if negate else frozenset(found)
    return None


def _delimited(items: Any) -> bool:
    """Whether each iteration of a repeated sequence ends at a delimiter its
    variable parts cannot match (``[^\\n]{1,200}\\n+``, ``\\w+\\.``), so the
    text splits into iterations one way only (no exponential backtracking)."""
    parts: list[tuple[frozenset[int], int, int]] = []  # (chars, min, max)
    for op, av in items:
        chars = _chars(op, av)
        if chars is not None:
            parts.append((chars, 1, 1))
            continue
        if op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT) and len(av[2]) == 1:
            inner = _chars(*av[2][0])
            if inner is not None:
                parts.append((inner, av[0], -1 if av[1] is _sre.MAXREPEAT else av[1]))
                continue
        return False
    if not parts:
        return False
    chars, low, high = parts[-1]
    if low < 1:
        return False
    others = parts[:-1]
    if any(part[1] != part[2] and part[0] & chars for part in others):
        return False  # a variable part can eat the delimiter
    if low == high:
        return True
    return any(part[1] >= 1 and not part[0] & chars for part in others)


def newline_after_caret(regex: re.Pattern[str]) -> bool:
    """Whether a ``^`` is followed by something that can match a newline
    (``^[^>].*?<a href=`` under ``/m``). Hyperscan 5.4 (the wheel's) misses
    some matches of such patterns when other patterns share the database
    (seen on the corpus: found alone, not together), so they stay with ``re``."""
    try:
        tree = parsed(regex.pattern, regex.flags)
    except Exception:  # the private parser changed: assume the worst
        return True
    return _caret_newline(list(tree.data))


def _caret_newline(items: list[Any]) -> bool:
    for index, (op, av) in enumerate(items):
        if op is _sre.AT and av in (_sre.AT_BEGINNING, _sre.AT_BEGINNING_LINE):
            follower = items[index + 1] if index + 1 < len(items) else None
            if follower is not None and _may_start_with_newline(*follower):
                return True
        elif op is _sre.SUBPATTERN and _caret_newline(list(av[3])):
            return True
        elif op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT, _sre.POSSESSIVE_REPEAT):
            if _caret_newline(list(av[2])):
                return True
        elif (op is _sre.BRANCH and any(_caret_newline(list(b)) for b in av[1])) or (
            op in (_sre.ASSERT, _sre.ASSERT_NOT) and _caret_newline(list(av[1]))
        ):
            return True
    return False


def _may_start_with_newline(op: Any, av: Any) -> bool:
    chars = _chars(op, av)
    if chars is not None:
        return 10 in chars
    if op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT, _sre.POSSESSIVE_REPEAT):
        inner = list(av[2])
        return bool(inner) and _may_start_with_newline(*inner[0])
    if op is _sre.SUBPATTERN:
        inner = list(av[3])
        return bool(inner) and _may_start_with_newline(*inner[0])
    return op is _sre.BRANCH  # not looked into: assume it may
