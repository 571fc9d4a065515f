"""Cheap necessary conditions of a few costly stock regexes, known by pattern.

Contract: ``precheck(regex)`` returns a function of one value that is False
only when ``regex`` cannot match that value, or None when nothing is known
of ``regex``. Known: the back-reference header rules (``backrefs``) and a
few line rules of SpamAssassin 4.0 that the multi-pattern engine reports on
nearly every message and that ``re`` then scans position by position for
nothing (``__LONGLINE``, ``__TENWORD_GIBBERISH``, ``__HDRS_MISSP``,
``__MSGID_BEFORE_RECEIVED``, ``__FROM_NAME_IN_MSG``,
``DOS_RCVD_IP_TWICE_C``, ``__RAND_HEADER``). A
regex is known only with its exact pattern and flags: an admin's rule of
the same name and another regex gets none. The caller runs the regex when
the function says True, so the hits stay exactly the regex's. Nothing here
raises.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from mailmoat.rules import backrefs

_SPACES = " \t\n\r\x0b\x0c"  # \s with re.ASCII


def _long_line(value: str) -> bool:
    """``^[^\\r\\n]{998}`` (multi-line) needs a line of 998 characters."""
    return len(value) >= 998 and max(map(len, value.split("\n"))) >= 998


def _spaced_dot_at_line_end(value: str) -> bool:
    """``^\\s*(?:[a-z]+\\s+){10}\\.$`` (multi-line, ASCII) needs "." after a
    white-space character at the end of a line (before "\\n" or the end)."""
    if len(value) >= 2 and value[-1] == "." and value[-2] in _SPACES:
        return True
    # Each ".\n" (one search for all six white-space characters before it;
    # the two characters cannot overlap another occurrence).
    at = value.find(".\n", 1)
    while at >= 0:
        if value[at - 1] in _SPACES:
            return True
        at = value.find(".\n", at + 2)
    return False


_NAME_NO_SPACE = r"(?:subject|from|to|reply-to):\S"
_NAME_NO_SPACE_AT_START = re.compile(_NAME_NO_SPACE, re.IGNORECASE | re.ASCII)
_NAME_NO_SPACE_AFTER_NEWLINE = re.compile("\n" + _NAME_NO_SPACE, re.IGNORECASE | re.ASCII)


def _name_then_no_space(value: str) -> bool:
    """``^(?:Subject|From|To|Reply-To):\\S`` (ignoring ASCII case,
    multi-line) decided exactly: one of those names at the start or after a
    newline (the regex's line starts), then a character that is not white
    space. Searched from each newline (a literal ``re`` skips to) instead of
    trying ``^`` at every place."""
    return (
        _NAME_NO_SPACE_AT_START.match(value) is not None
        or _NAME_NO_SPACE_AFTER_NEWLINE.search(value) is not None
    )


def _message_id_then_received(value: str) -> bool:
    """``^Message-Id:.*?^Received:`` (ignoring ASCII case, multi-line,
    dot-all) needs a line starting "Received:" after one starting "Message-Id:"."""
    low = backrefs.lowered(value)
    first = 0 if low.startswith(b"message-id:") else low.find(b"\nmessage-id:")
    return first >= 0 and low.find(b"\nreceived:", first) >= 0


_FIRST_RELAY = re.compile(r"\s*\[ ip=([\d.]+) ", re.ASCII)


def _first_relay_again(value: str) -> bool:
    r"""``^\s*\[ ip=(?!127)([\d.]+) ...\[ ip=\1 ...`` (``^``: the text's
    start) needs the first relay's address, not 127..., in a later relay."""
    first = _FIRST_RELAY.match(value)
    if first is None or first.group(1).startswith("127"):
        return False
    return f"[ ip={first.group(1)} " in value[first.end() :]


def _from_name_repeated(value: str) -> bool:
    r"""``^From:\s+([^<]\S+\s\S+)\s(?=.{1,2048}^\1\r?$)`` (multi-line,
    dot-all) needs, after a line starting "From:", a line ending with the
    second word after it (words: runs of non-white-space, as \S+ must end
    before \s): the captured name ends with that word, and its line is the name."""
    for after in _after_line_starts(value, "From:"):
        word = _SECOND_WORD.match(value, after)
        if word is None:
            continue
        name, end = word.group(1), word.end()
        if (
            value.find(f"{name}\n", end) >= 0
            or value.find(f"{name}\r\n", end) >= 0
            or value.endswith((name, f"{name}\r"))
        ):
            return True
    return False


def _after_line_starts(value: str, start: str) -> Iterator[int]:
    """The position after each line start (multi-line ``^``) ``start`` opens."""
    if value.startswith(start):
        yield len(start)
    line = "\n" + start
    at = value.find(line)
    while at >= 0:
        yield at + len(line)
        at = value.find(line, at + 1)


_DASHED_NAME_DIGITS = re.compile(r"-[a-z]{3,}:\s+\d\S{5}", re.IGNORECASE | re.MULTILINE | re.ASCII)


def _dashed_name_then_digits(value: str) -> bool:
    r"""``^(?!...)(?:[a-z]{4,}-[a-z]{3,}|[a-z]{3,}-[a-z]{4,}):\s+\d(?=\S{6,}\s*$)...``
    (ignoring ASCII case, multi-line) needs a line that starts with three
    letters or more, then "-", letters, ":", white space, a digit and five
    characters that are not white space. Each "-..." found is checked for
    letters only from its line start: the first non-letter of such a line is
    that "-", so no earlier find can cover it (``\s+`` crossing lines ends
    before a digit, never before a letter)."""
    for found in _DASHED_NAME_DIGITS.finditer(value):
        dash = found.start()
        head = value[value.rfind("\n", 0, dash) + 1 : dash]
        if len(head) >= 3 and head.isascii() and head.isalpha():
            return True
    return False


_SECOND_WORD = re.compile(r"\s+\S+\s+(\S+)\s", re.ASCII)

_MULTILINE_ASCII = re.MULTILINE | re.ASCII
_ALL_FLAGS = re.IGNORECASE | re.MULTILINE | re.DOTALL | re.ASCII
# (pattern, flags) -> condition, as SpamAssassin 4.0's rule files write them.
_KNOWN: dict[tuple[str, int], Callable[[str], bool]] = {
    (r"^[^\r\n]{998}", _MULTILINE_ASCII): _long_line,  # __LONGLINE (full)
    (r"^\s*(?:[a-z]+\s+){10}\.$", _MULTILINE_ASCII): _spaced_dot_at_line_end,  # __TENWORD_...
    (r"^(?:Subject|From|To|Reply-To):\S", _ALL_FLAGS): _name_then_no_space,  # __HDRS_MISSP
    (r"^Message-Id:.*?^Received:", _ALL_FLAGS): _message_id_then_received,  # __MSGID_BEFORE_...
    (
        r"^\s*\[ ip=(?!127)([\d.]+) [^\[]*\bhelo=(?:![\d.]{7,15}!)? [^\[]*\[ ip=\1 [^\]]*\]\s*$",
        re.ASCII,
    ): _first_relay_again,  # DOS_RCVD_IP_TWICE_C
    (
        r"^From:\s+([^<]\S+\s\S+)\s(?=.{1,2048}^\1\r?$)",
        re.MULTILINE | re.DOTALL | re.ASCII,
    ): _from_name_repeated,  # __FROM_NAME_IN_MSG
    (
        r"^(?!Accept-Language|Authentication-Results|Content-|DomainKey-Signature|DKIM-|List-|"
        r"MIME-|Received-SPF|Return-Path|Thread-|User-Agent|Tracking-Code)(?:[a-z]{4,}-[a-z]{3,}|"
        r"[a-z]{3,}-[a-z]{4,}):\s+\d(?=\S{6,}\s*$)[\da-f]*(?:[-.]\w+)*\s*$",
        _ALL_FLAGS,
    ): _dashed_name_then_digits,  # __RAND_HEADER
}


def precheck(regex: re.Pattern[str]) -> Callable[[str], bool] | None:
    """The necessary condition known for ``regex`` (see the module docstring), or None."""
    flags = regex.flags & ~re.UNICODE
    known = _KNOWN.get((regex.pattern, flags))
    return known if known is not None else backrefs.precheck(regex)
