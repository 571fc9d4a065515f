"""One regex search over a text's lines joined, instead of one per line.

Contract: SpamAssassin matches ``body`` and ``uri`` rules line by line (a
line holds no newline). ``line_regex(regex)`` is the same regex with ``^``
and ``$`` taken at every line (``re.MULTILINE``), or None when the regex
has a construct whose meaning changes once the lines are joined (look-
arounds, ``\\A``, ``\\Z``: they could see the neighbouring line).
``decide(line_regex, joined)`` then says, with one search over the lines
joined by newlines: False when no line can match (any line's match is a
match of the joined text), True when the first match found lies within one
line (it is a match of that line alone), None when it cannot tell (the
caller searches line by line).
"""

from __future__ import annotations

import importlib
import re
from typing import Any

from mailmoat.rules.prefilter import parsed

_sre: Any = importlib.import_module("re._parser")

LINE_TEXTS = frozenset({"sa-body", "sa-body-nosubject", "sa-uri"})


def line_regex(regex: re.Pattern[str]) -> re.Pattern[str] | None:
    try:
        tree = parsed(regex.pattern, regex.flags)
    except Exception:  # the private parser changed: no shortcut
        return None
    if not _plain(tree.data):
        return None
    return re.compile(regex.pattern, regex.flags | re.MULTILINE)


def _plain(items: Any) -> bool:
    sre = _sre
    for op, av in items:
        if op in (sre.ASSERT, sre.ASSERT_NOT, sre.GROUPREF_EXISTS):
            return False
        if op is sre.AT and av in (sre.AT_BEGINNING_STRING, sre.AT_END_STRING):
            return False
        if op is sre.SUBPATTERN and not _plain(av[3]):
            return False
        if op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT) and not _plain(av[2]):
            return False
        if op is sre.ATOMIC_GROUP and not _plain(av):
            return False
        if op is sre.BRANCH and not all(_plain(branch) for branch in av[1]):
            return False
    return True


def decide(regex: re.Pattern[str], joined: str) -> bool | None:
    match = regex.search(joined)
    if match is None:
        return False
    if "\n" not in joined[match.start() : match.end()]:
        return True
    return None
