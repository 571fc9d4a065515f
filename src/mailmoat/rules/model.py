"""The rule model shared by every rule source (TOML, SpamAssassin ``.cf``).

Contract: a ``Rule`` is an immutable, already compiled rule: its kind (one
of ``KINDS``), score, description, where it was defined (``file:line``) and,
for regex kinds, the compiled regex plus the literals the prefilter uses;
for metas the parsed expression. ``RuleError`` is what every loader raises
for a rule it refuses (the caller reports it with file and line and skips
the rule). SpamAssassin rules also carry the text they search (a
``Texts`` key), ``negate`` (``!~``), ``maxhits`` and their ``tflags``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

KINDS = ("header", "body", "rawbody", "uri", "meta")
SA_KINDS = ("header", "body", "rawbody", "uri", "full", "meta")

Expr = str | tuple[Any, ...]


class RuleError(ValueError):
    pass


@dataclass(frozen=True)
class Rule:
    name: str
    kind: str
    score: float
    description: str
    source: str  # "file:line"
    regex: re.Pattern[str] | None = None
    header: str = ""
    expr: Expr = ""
    # A match contains a literal of each group (case-folded when ``folded``).
    needles: tuple[tuple[str, ...], ...] = ()
    folded: bool = False
    # Every match starts with one of these (case-folded when ``folded``).
    lead: tuple[str, ...] = ()
    # The text searched (a ``Texts`` key); "" means the TOML default of ``kind``.
    text: str = ""
    # SpamAssassin's ``!~``: the rule hits when the regex does not match.
    negate: bool = False
    # Matches counted per message (SpamAssassin's ``tflags multiple``/``maxhits``).
    maxhits: int = 1
    tflags: tuple[str, ...] = ()
    priority: int = 0
