"""The rule model shared by every rule source (TOML, SpamAssassin ``.cf``).

Contract: a ``Rule`` is an immutable, already compiled rule: its kind (one
of ``KINDS``), score, description, where it was defined (``file:line``) and,
for regex kinds, the compiled regex plus the literals the prefilter uses;
for metas the parsed expression. ``RuleError`` is what every loader raises
for a rule it refuses (the caller reports it with file and line and skips
the rule).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

KINDS = ("header", "body", "rawbody", "uri", "meta")

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
