"""Cheap necessary conditions for SpamAssassin's back-reference header rules.

Contract: ``precheck(regex)`` returns, for a regex known here (exact pattern
and flags: ``__TO_EQ_FROM_*``, ``__SUBJ_HAS_TO_1``/``_2``,
``__SUBJ_HAS_FROM_1``, ``__PDS_TO_BRAND_SUBJECT``, all on ``ALL``), a function
of a text that is False only when the regex cannot match it; None for any
other regex. The caller runs the regex only when the function says True, so
the hits stay exactly the regex's.

These regexes capture a value on one header line (an address after
``From:``, a recipient after ``for`` in a ``Received`` line...) and look for
it again, with ``\\1``, on a later line (``To:``, ``Subject:``...). ``re``
pays for that by backtracking over every later line, for every place the
first part matches, on nearly every message. The condition here lists what
the capture can be (a superset: every place it can start, each giving one
value, as the character after the capture must be one the capture's class
excludes) and asks whether one of them occurs after the keyword of the
second part, later in the text, in the rest of that keyword's line (the next
non-blank line too, where ``\\s+`` may cross lines). The regexes ignore case
with ASCII semantics: the text is lowered as bytes (ASCII letters only);
characters past Latin-1, which no SpamAssassin header text holds, become
"?", which no keyword holds. Nothing here raises.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

_SPACE = b" \t\n\r\x0b\x0c"  # \s with re.ASCII
_DIGITS = b"0123456789"
_FLAGS = re.IGNORECASE | re.MULTILINE | re.DOTALL | re.ASCII


_WS = rb"[ \t\n\r\x0b\x0c]*"


@dataclass(frozen=True)
class Shape:
    """Where a back-reference rule's capture can be, and where ``\\1`` must be."""

    head: bytes  # what precedes the capture's line part (lower case)
    starts: str  # "angle": after the head or a "<"; "at": after an "@"; "for": after " for <?"
    stop: bytes  # characters the capture cannot hold
    tail: bytes  # the keyword the back-reference follows (lower case)
    skip_space: bool = False  # the head ends with \s+ (which may cross lines)
    digits: bool = False  # the capture may end before a run of digits (lazy, then \d*)
    adjacent: bool = False  # \1 right after the tail keyword (an optional '"' between)
    tail_skip: bytes = _WS  # what may come between the tail keyword and \1's line

    def __post_init__(self) -> None:
        space = _WS if self.skip_space else b""
        # Zero width: every occurrence, even one inside another's line.
        lines = re.compile(re.escape(self.head) + b"(?=" + space + b"([^\n]*))")
        run = re.compile(b"[^" + re.escape(self.stop) + b"]+") if self.stop else None
        object.__setattr__(self, "_lines", lines)
        object.__setattr__(self, "_run", run)

    def may_match(self, text: str) -> bool:
        memo = _memo(text)
        if self.adjacent:
            return self._adjacent(memo.low)
        region = memo.region(self.tail, self.tail_skip)
        if not region:
            return False
        lines: re.Pattern[bytes] = getattr(self, "_lines")  # noqa: B009
        run: re.Pattern[bytes] = getattr(self, "_run")  # noqa: B009
        for line in lines.findall(memo.low):
            for start in self._starts(line):
                found = run.match(line, start)
                if found is None:
                    continue
                value = found.group()
                if self.digits:
                    value = value.rstrip(_DIGITS)  # a prefix of every value it can take
                    if not value:
                        return True
                if value in region:
                    return True
        return False

    def _starts(self, line: bytes) -> Iterator[int]:
        """Where the capture can start in ``line`` (the head's line, after the head)."""
        if self.starts == "for":
            for at in _each(line, b" for "):
                yield at + 5
                if line[at + 5 : at + 6] == b"<":
                    yield at + 6
            return
        if self.starts == "angle":
            yield 0
        for at in _each(line, b"<" if self.starts == "angle" else b"@"):
            yield at + 1

    def _adjacent(self, low: bytes) -> bool:
        """The head at a line start, the value from the first "@" after it to
        the next "."; the tail keyword at a line start, the value right after."""
        heads = [*_each(low, self.head)]
        if low.startswith(self.head[1:]):
            heads.append(-1)
        tails = [at + len(self.tail) for at in _each(low, self.tail)]
        for head in heads:
            at = low.find(b"@", head + len(self.head))
            dot = low.find(b".", at + 1) if at >= 0 else -1
            if dot <= at + 1:
                continue
            value = low[at + 1 : dot]
            quoted = b'"' + value
            for tail in tails:
                if tail > dot and (low.startswith(value, tail) or low.startswith(quoted, tail)):
                    return True
        return False


def _each(data: bytes, needle: bytes) -> Iterator[int]:
    """Every position of ``needle`` in ``data``."""
    at = data.find(needle)
    while at >= 0:
        yield at
        at = data.find(needle, at + 1)


class _Memo:
    """One text as the conditions read it, made once for all the rules."""

    __slots__ = ("low", "regions", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.low = text.encode("latin-1", "replace").lower()
        self.regions: dict[tuple[bytes, bytes], bytes] = {}

    def region(self, keyword: bytes, skip: bytes) -> bytes:
        """What follows each occurrence of ``keyword``, up to the end of the
        line where the run of ``skip`` after it ends, joined by newlines."""
        made = self.regions.get((keyword, skip))
        if made is None:
            after = _TAILS.get((keyword, skip))
            if after is None:
                after = re.compile(re.escape(keyword) + b"(?=(" + skip + b"[^\n]*))")
                _TAILS[(keyword, skip)] = after
            made = self.regions[(keyword, skip)] = b"\n".join(after.findall(self.low))
        return made


_TAILS: dict[tuple[bytes, bytes], re.Pattern[bytes]] = {}
_last: _Memo = _Memo("")


def lowered(text: str) -> bytes:
    """``text`` with its ASCII letters lowered, one byte per character
    (characters past Latin-1 become "?"); kept for the next rule."""
    return _memo(text).low


def _memo(text: str) -> _Memo:
    """The memo of ``text`` (the same text comes for several rules in a row)."""
    global _last
    last = _last
    if last.text is text:
        return last
    made = _last = _Memo(text)
    return made


_FROM = b"\nfrom: "
_TO = b"\nto: "
_ADDRESS = _SPACE + b">"  # [^\n\s>]
_USER = _SPACE + b"@>"  # [^\n\s\@>]

# (pattern, shape) of each rule, as SpamAssassin 4.0's 20_*.cf and 72_active.cf write it.
_SHAPES: dict[str, Shape] = {
    # __TO_EQ_FROM_1, __TO_EQ_FROM_2
    r"\nFrom: (?:[^\n<]{0,80}<)?([^\n\s>]+)>?\n+(?:[^\n]{1,100}\n+)*To: (?:[^\n]{0,80}<)?\1"
    r"[>,\s\n]": Shape(_FROM, "angle", _ADDRESS, b"to: "),
    r"\nTo: (?:[^\n<]{0,80}<)?([^\n\s>]+)>?\n+(?:[^\n]{1,100}\n+)*From: (?:[^\n]{0,80}<)?\1"
    r"[>,\s\n]": Shape(_TO, "angle", _ADDRESS, b"from: "),
    # __TO_EQ_FROM_DOM_1, __TO_EQ_FROM_DOM_2
    r"\nFrom: [^\n@]{0,80}@([^\n\s>]+)>?\n+(?:[^\n]{1,100}\n+)*To: [^\n]+@\1[>,\s\n]": (
        Shape(_FROM, "at", _ADDRESS, b"to: ")
    ),
    r"\nTo: [^\n@]{0,80}@([^\n\s>]+)>?\n+(?:[^\n]{1,100}\n+)*From: [^\n]+@\1[>,\s\n]": (
        Shape(_TO, "at", _ADDRESS, b"from: ")
    ),
    # __TO_EQ_FROM_USR_1, __TO_EQ_FROM_USR_2
    r"\nFrom:\s+(?:[^\n<]{0,80}<)?([^\n\s\@>]+)\@[^\n\s]+>?\n+(?:[^\n]{1,100}\n+)*To:\s+"
    r"(?:[^\n]{0,80}<)?\1[\@>,\s\n]": Shape(b"\nfrom:", "angle", _USER, b"to:", skip_space=True),
    r"\nTo:\s+(?:[^\n<]{0,80}<)?([^\n\s\@>]+)\@[^\n\s]+>?\n+(?:[^\n]{1,100}\n+)*From:\s+"
    r"(?:[^\n]{0,80}<)?\1[\@>,\s\n]": Shape(b"\nto:", "angle", _USER, b"from:", skip_space=True),
    # __TO_EQ_FROM_USR_NN_1, __TO_EQ_FROM_USR_NN_2
    r"\nFrom:\s+(?:[^\n<]{0,80}<)?([^\n\s\@>]{4,80}?)\d*\@[^\n\s]+>?\n+(?:[^\n]{1,100}\n+)*"
    r"To:\s+(?:[^\n]{0,80}<)?\1\d*[\@>,\s\n]": (
        Shape(b"\nfrom:", "angle", _USER, b"to:", skip_space=True, digits=True)
    ),
    r"\nTo:\s+(?:[^\n<]{0,80}<)?([^\n\s\@>]{4,80}?)\d*\@[^\n\s]+>?\n+(?:[^\n]{1,100}\n+)*"
    r"From:\s+(?:[^\n]{0,80}<)?\1\d*[\@>,\s\n]": (
        Shape(b"\nto:", "angle", _USER, b"from:", skip_space=True, digits=True)
    ),
    # __SUBJ_HAS_FROM_1, __SUBJ_HAS_TO_1, __SUBJ_HAS_TO_2
    r"\nFrom: (?:[^\n<]{0,80}<)?([^\n\s>]+)>?\n+(?:[^\n]{1,100}\n+)*Subject: [^\n]{0,100}\1"
    r"[>,:\s\n]": Shape(_FROM, "angle", _ADDRESS, b"subject: "),
    r"\nTo: (?:[^\n<]{0,80}<)?([^\n\s>,]+)>?\n+(?:[^\n]{1,200}\n+)*Subject: [^\n]{0,100}\1"
    r"[^a-z0-9]": Shape(_TO, "angle", _ADDRESS + b",", b"subject: "),
    r"\nReceived:[^\n]{0,200} for <?([^\n\s>;]+)>?;(?:[^\n]+\n+)*Subject: [^\n]{0,100}\1"
    r"[^a-z0-9]": Shape(b"\nreceived:", "for", _SPACE + b">;", b"subject: "),
    # __PDS_TO_EQ_FROM_NAME_1: \W+ between "From:" and \1 (may cross lines)
    r"\nTo: (?:[^\n<]{0,80}<)?([^\n\s>]+)>?\n+(?:[^\n]{1,100}\n+)*From:\W+(\1)([^\n\w<]++<)?"
    r'((?!\1)[^\n">]++)>?\n': Shape(_TO, "angle", _ADDRESS, b"from:", tail_skip=rb"[^a-z0-9_]*"),
    # __PDS_TO_BRAND_SUBJECT: "To:" at a line start (the text's first line too)
    r"^To:\s+<?[^\@]+\@([^\.]+)\.(?:[^\n]+\n+)*^Subject: \"?\1\b": (
        Shape(b"\nto:", "", b"", b"\nsubject: ", adjacent=True)
    ),
}


def precheck(regex: re.Pattern[str]) -> Callable[[str], bool] | None:
    """The necessary condition of ``regex`` (see the module docstring), or None."""
    if regex.flags & _FLAGS != _FLAGS or regex.flags & re.VERBOSE:
        return None
    shape = _SHAPES.get(regex.pattern)
    if shape is None:
        return None
    return shape.may_match
