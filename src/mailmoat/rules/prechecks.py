"""Cheap necessary conditions of a few costly stock regexes, known by pattern.

Contract: ``precheck(regex)`` returns a function of one value that is False
only when ``regex`` cannot match that value, or None when nothing is known
of ``regex``. Known: the back-reference header rules (``backrefs``) and a
few line rules of SpamAssassin 4.0 that the multi-pattern engine reports on
nearly every message and that ``re`` then scans position by position for
nothing (``__LONGLINE``, ``__TENWORD_GIBBERISH``, ``__HDRS_MISSP``). A
regex is known only with its exact pattern and flags: an admin's rule of
the same name and another regex gets none. The caller runs the regex when
the function says True, so the hits stay exactly the regex's. Nothing here
raises.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from mailmoat.rules import backrefs

_SPACES = " \t\n\r\x0b\x0c"  # \s with re.ASCII
_SPACE_BYTES = _SPACES.encode()


def _long_line(value: str) -> bool:
    """``^[^\\r\\n]{998}`` (multi-line) needs a line of 998 characters."""
    return len(value) >= 998 and max(map(len, value.split("\n"))) >= 998


def _spaced_dot_at_line_end(value: str) -> bool:
    """``^\\s*(?:[a-z]+\\s+){10}\\.$`` (multi-line, ASCII) needs "." after a
    white-space character at the end of a line (before "\\n" or the end)."""
    if len(value) >= 2 and value[-1] == "." and value[-2] in _SPACES:
        return True
    return any(f"{space}.\n" in value for space in _SPACES)


_HEADER_NAMES = (b"subject:", b"from:", b"to:", b"reply-to:")


def _name_then_no_space(value: str) -> bool:
    """``^(?:Subject|From|To|Reply-To):\\S`` (ignoring ASCII case,
    multi-line) needs one of those names at a line start, then a character
    that is not white space."""
    # ASCII letters lowered, one byte per character; "\n" first: every line start follows one.
    low = b"\n" + value.encode("latin-1", "replace").lower()
    for name in _HEADER_NAMES:
        line = b"\n" + name
        at = low.find(line)
        while at >= 0:
            after = low[at + len(line) : at + len(line) + 1]
            if after and after not in _SPACE_BYTES:
                return True
            at = low.find(line, at + 1)
    return False


_MULTILINE_ASCII = re.MULTILINE | re.ASCII
_ALL_FLAGS = re.IGNORECASE | re.MULTILINE | re.DOTALL | re.ASCII
# (pattern, flags) -> condition, as SpamAssassin 4.0's rule files write them.
_KNOWN: dict[tuple[str, int], Callable[[str], bool]] = {
    (r"^[^\r\n]{998}", _MULTILINE_ASCII): _long_line,  # __LONGLINE (full)
    (r"^\s*(?:[a-z]+\s+){10}\.$", _MULTILINE_ASCII): _spaced_dot_at_line_end,  # __TENWORD_...
    (r"^(?:Subject|From|To|Reply-To):\S", _ALL_FLAGS): _name_then_no_space,  # __HDRS_MISSP
}


def precheck(regex: re.Pattern[str]) -> Callable[[str], bool] | None:
    """The necessary condition known for ``regex`` (see the module docstring), or None."""
    flags = regex.flags & ~re.UNICODE
    known = _KNOWN.get((regex.pattern, flags))
    return known if known is not None else backrefs.precheck(regex)
