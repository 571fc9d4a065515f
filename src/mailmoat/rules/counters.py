"""Exact match counts of a few counting stock rules, known by pattern.

Contract: ``counter(regex)`` returns, for a regex known here (exact pattern
and flags), a function of one value giving the number of matches
``regex.finditer`` finds in it, or None for any other regex. Known: the
"a line that does not start with ``>`` and has a link or an image on it"
rules of SpamAssassin 4.0 (``__HAS_HREF``, ``__HAS_HREF_ONECASE``,
``__HAS_IMG_SRC``, ``__HAS_IMG_SRC_ONECASE``: ``^[^>].*?<a href=`` and the
like, multi-line, counted up to 100 on every raw body chunk with a link),
which ``re`` pays for with a lazy scan from every line start. Nothing here
raises.

How the count follows from the text (``^[^>].*?L`` with ``^`` at each line
start, ``.`` no newline, ``L`` a literal without one): a match starts at a
line start ``p``. When the character there is a newline (an empty line),
``[^>]`` takes it and ``L`` must occur on the next line, anywhere; else the
character must not be ``>`` and ``L`` must occur later on the same line.
Every match ends on the line where its ``L`` is, so the next search starts
on that line and the next match starts on a later one: each line is where
at most one match ends, and a line ``k`` is where one ends exactly when the
line before it is empty and ``L`` occurs on ``k``, or ``k`` does not start
with ``>`` and ``L`` occurs on it after its first character.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class LineCounter:
    """The count of ``^[^>].*?(?:literals)`` (multi-line; ``folded``: ASCII
    case ignored, ``literals`` lower case) in one value (see the module
    docstring). A plain value: it pickles with the rule set."""

    literals: tuple[str, ...]
    folded: bool

    def __call__(self, value: str) -> int:
        low = value
        if self.folded:
            low = value.encode("latin-1", "replace").lower().decode("latin-1")
        # The line start of each line where a literal occurs -> the greatest
        # offset from it at which one does.
        furthest: dict[int, int] = {}
        for literal in self.literals:
            at = low.find(literal)
            while at >= 0:
                start = low.rfind("\n", 0, at) + 1
                if furthest.get(start, -1) < at - start:
                    furthest[start] = at - start
                at = low.find(literal, at + 1)
        found = 0
        for start, offset in furthest.items():
            after_empty_line = start >= 1 and (start == 1 or value[start - 2] == "\n")
            if after_empty_line or (offset >= 1 and value[start] != ">"):
                found += 1
        return found


_MULTILINE = re.MULTILINE | re.ASCII
_FOLDED = re.IGNORECASE | re.MULTILINE | re.ASCII
# (pattern, flags) -> count, as SpamAssassin 4.0's rule files write them.
_KNOWN: dict[tuple[str, int], Callable[[str], int]] = {
    (r"^[^>].*?<a href=", _FOLDED): LineCounter(("<a href=",), True),  # __HAS_HREF
    (r"^[^>].*?<(?:a href|A HREF)=", _MULTILINE): LineCounter(
        ("<a href=", "<A HREF="), False
    ),  # __HAS_HREF_ONECASE
    (r"^[^>].*?<img src=", _FOLDED): LineCounter(("<img src=",), True),  # __HAS_IMG_SRC
    (r"^[^>].*?<(?:img src|IMG SRC)=", _MULTILINE): LineCounter(
        ("<img src=", "<IMG SRC="), False
    ),  # __HAS_IMG_SRC_ONECASE
}


def counter(regex: re.Pattern[str]) -> Callable[[str], int] | None:
    """The exact counter known for ``regex`` (see the module docstring), or None."""
    return _KNOWN.get((regex.pattern, regex.flags & ~re.UNICODE))
