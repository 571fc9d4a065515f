"""A smaller regex that matches wherever a large one does (a superset).

Contract: ``superset(regex)`` returns a compiled regex (same flags, minus
``re.VERBOSE``) whose matches include every match of ``regex``, or None
when the pattern has a construct this cannot widen (back-references,
conditionals). It exists for the patterns Hyperscan refuses as too large
(SpamAssassin's ReplaceTags rules: each letter an alternation of dozens of
look-alike characters, UTF-8 sequences and HTML entities): in the superset
each such alternation becomes a class for its first character and one
class, repeated, for the rest (``[pP\xd1...][\x80-\xff#0-9;]{0,3}``; the
non-ASCII bytes taken together), a fraction of the size, so Hyperscan can
prefilter the rule and ``re`` runs
only on the texts it reports. Widening only ever adds matches:
zero-width assertions other than ``^``, ``\\b`` and ``\\B`` are dropped
(they only restrict), and alternatives are merged position by position.
Nothing here raises on a pattern it cannot read (None).
"""

from __future__ import annotations

import importlib
import re
from typing import Any

from mailmoat.rules.prefilter import parsed
from mailmoat.rules.shapes import chars_as_written

_sre: Any = importlib.import_module("re._parser")
_POSITIONS = 12  # an alternation of strings up to this long may be merged by position
_WORTH = 48  # merged only when written out in full it is longer than this
_NON_ASCII = frozenset(range(0x80, 0x100))
# The positions of each alternation seen in the tree being widened (by id: the
# tree is alive meanwhile), so nested ones are not worked out again per level.
_MEMO: dict[int, tuple[list[frozenset[int]], int] | None] = {}


class _Unsupported(Exception):
    pass


def superset(regex: re.Pattern[str]) -> re.Pattern[str] | None:
    try:
        tree = parsed(regex.pattern, regex.flags)
        _MEMO.clear()
        source = _render(tree.data)
        return re.compile(source, regex.flags & ~re.VERBOSE)
    except (_Unsupported, re.error, RecursionError):
        return None
    except Exception:  # the private parser changed: no superset known
        return None


def _chars(op: Any, av: Any) -> frozenset[int] | None:
    """The byte values one single-character item matches (None: not one)."""
    found = chars_as_written(op, av)
    return None if found is None else frozenset(c for c in found if c < 256)


def _class(chars: frozenset[int]) -> str:
    if not chars:
        raise _Unsupported("an empty class")
    values = sorted(chars)
    parts: list[str] = []
    start = previous = values[0]
    for value in [*values[1:], -2]:
        if value != previous + 1:
            parts.append(_char(start) if start == previous else f"{_char(start)}-{_char(previous)}")
            start = value
        previous = value
    return "[" + "".join(parts) + "]"


def _char(value: int) -> str:
    return chr(value) if chr(value).isascii() and chr(value).isalnum() else f"\\x{value:02x}"


def _positions(items: Any) -> tuple[list[frozenset[int]], int] | None:
    """(character sets by position, shortest length) of a sequence of
    single characters and alternations of such sequences (None when it is
    not that): every string it matches has, at each position, a character
    of that position's set."""
    sets: list[frozenset[int]] = []
    shortest = 0
    for op, av in items:
        chars = _chars(op, av)
        part: tuple[list[frozenset[int]], int] | None
        if chars is not None:
            part = ([chars], 1)
        elif op is _sre.SUBPATTERN and not av[1] and not av[2]:
            part = _positions(av[3])
        elif op is _sre.BRANCH:
            key = id(av)
            if key not in _MEMO:
                _MEMO[key] = _merged([_positions(branch) for branch in av[1]])
            part = _MEMO[key]
        else:
            return None
        if part is None:
            return None
        sets, shortest = _followed(sets, shortest, *part)
        if len(sets) > _POSITIONS:
            return None
    return sets, shortest


def _followed(
    sets: list[frozenset[int]], shortest: int, after: list[frozenset[int]], after_shortest: int
) -> tuple[list[frozenset[int]], int]:
    """The positions of a string of ``sets`` followed by one of ``after``:
    position ``i`` may hold what the first has there or what the second has
    at ``i`` minus any length the first can have."""
    length = len(sets) + len(after)
    found: list[set[int]] = [set(chars) for chars in sets] + [set() for _ in after]
    for first_length in range(shortest, len(sets) + 1):
        for index, chars in enumerate(after):
            found[first_length + index] |= chars
    return [frozenset(chars) for chars in found[:length]], shortest + after_shortest


def _merged(
    parts: list[tuple[list[frozenset[int]], int] | None],
) -> tuple[list[frozenset[int]], int] | None:
    known = [part for part in parts if part is not None]
    if not parts or len(known) != len(parts):
        return None
    length = max(len(sets) for sets, _ in known)
    merged = [
        frozenset().union(*(sets[i] for sets, _ in known if i < len(sets))) for i in range(length)
    ]
    return merged, min(shortest for _, shortest in known)


def _render_positions(sets: list[frozenset[int]], shortest: int) -> str:
    """``sets`` as a regex: the first position's class, then the union of the
    others, as many times as the shortest and longest strings allow; the
    non-ASCII bytes (UTF-8 look-alikes) taken together."""
    first = _class(_widened(sets[0]))
    if len(sets) == 1:
        return first
    rest = _class(_widened(frozenset().union(*sets[1:])))
    return f"{first}{rest}{{{max(shortest - 1, 0)},{len(sets) - 1}}}"


def _widened(chars: frozenset[int]) -> frozenset[int]:
    """``chars`` with every non-ASCII byte when it has several (a short class)."""
    return chars | _NON_ASCII if len(chars & _NON_ASCII) > 1 else chars


_ANCHORS = {"AT_BEGINNING": "^", "AT_BEGINNING_LINE": "^", "AT_BOUNDARY": r"\b"}
_ANCHORS["AT_NON_BOUNDARY"] = r"\B"


def _render(items: Any) -> str:
    return "".join(_render_item(op, av) for op, av in items)


def _render_item(op: Any, av: Any) -> str:
    chars = _chars(op, av)
    if chars is not None:
        return _class(chars)
    if op is _sre.AT:
        return _ANCHORS.get(str(av), "")  # ``$`` and the like: dropped (a superset)
    if op in (_sre.ASSERT, _sre.ASSERT_NOT):
        return ""  # a look-around only restricts
    if op is _sre.SUBPATTERN:
        add, remove = av[1], av[2]
        flags = _flag_letters(add) + ("-" + _flag_letters(remove) if remove else "")
        return f"(?{flags}:{_render(av[3])})"
    if op is _sre.ATOMIC_GROUP:
        return f"(?:{_render(av)})"
    if op is _sre.BRANCH:
        merged = _positions([(op, av)])  # None soon for long alternatives
        written = "(?:" + "|".join(_render(branch) for branch in av[1]) + ")"
        if merged is not None and len(written) > _WORTH:
            return _render_positions(*merged)
        return written
    if op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT, _sre.POSSESSIVE_REPEAT):
        low, high = av[0], av[1]
        bound = "" if high is _sre.MAXREPEAT else str(high)
        return f"(?:{_render(av[2])}){{{low},{bound}}}"
    raise _Unsupported(str(op))


def _flag_letters(flags: int) -> str:
    letters = {re.IGNORECASE: "i", re.MULTILINE: "m", re.DOTALL: "s", re.ASCII: "a"}
    return "".join(letter for flag, letter in letters.items() if flags & flag)


def line_exact(regex: re.Pattern[str]) -> str | None:
    """``regex`` for Hyperscan to decide exactly over lines joined by
    newlines (its ``^``/``$`` at each line), or None when that would not be
    exact: every class without the newline (a line has none, so no match
    spans two lines), classes spelled out with ASCII semantics (so the regex
    must be ``re.ASCII``), and nothing Hyperscan or the joining changes
    (look-arounds, ``\\A``/``\\Z``, back-references, atomic or possessive
    parts, scoped flags other than ``i``)."""
    if not regex.flags & re.ASCII or regex.flags & re.VERBOSE:
        return None
    try:
        return _render_exact(parsed(regex.pattern, regex.flags).data)
    except (_Unsupported, RecursionError):
        return None
    except Exception:  # the private parser changed: not exact
        return None


_LINE_ANCHORS = {"AT_BEGINNING": "^", "AT_BEGINNING_LINE": "^", "AT_END": "$"}
_LINE_ANCHORS |= {"AT_END_LINE": "$", "AT_BOUNDARY": r"\b", "AT_NON_BOUNDARY": r"\B"}
_NEWLINE = frozenset({10})


def _render_exact(items: Any) -> str:
    return "".join(_exact_item(op, av) for op, av in items)


def _exact_item(op: Any, av: Any) -> str:
    chars = _chars(op, av)
    if chars is not None:
        return _class(chars - _NEWLINE)
    if op is _sre.AT and str(av) in _LINE_ANCHORS:
        return _LINE_ANCHORS[str(av)]
    if op is _sre.SUBPATTERN and av[1] in (0, re.IGNORECASE) and not av[2]:
        return f"(?{_flag_letters(av[1])}:{_render_exact(av[3])})"
    if op is _sre.BRANCH:
        return "(?:" + "|".join(_render_exact(branch) for branch in av[1]) + ")"
    if op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT):
        bound = "" if av[1] is _sre.MAXREPEAT else str(av[1])
        return f"(?:{_render_exact(av[2])}){{{av[0]},{bound}}}"
    raise _Unsupported(str(op))
