"""Meta rule expressions: parsed, never ``eval``-ed, then compiled to closures.

Contract: ``parse_meta`` turns ``A && (B || !C)`` into a small tree (a rule
name, ``("!", x)``, ``("&&", a, b)`` or ``("||", a, b)``) or raises
``RuleError``; ``compile_meta`` turns a tree into a function of the hits
(by rule position), a name it does not know being false.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter

from mailmoat.rules.model import Expr, RuleError

_TOKEN = re.compile(r"\s*(?:(&&)|(\|\|)|(!)|(\()|(\))|([A-Za-z_][A-Za-z0-9_]*))")


def parse_meta(text: str) -> Expr:
    """Parse ``A && (B || !C)``; RuleError on anything else."""
    tokens: list[tuple[int, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise RuleError(f"meta: unexpected {text[pos:].strip()[:20]!r}")
        tokens.append((match.lastindex or 0, match.group(match.lastindex or 0)))
        pos = match.end()
    if len(tokens) > 500:
        raise RuleError("meta: expression too long")
    index = 0

    def peek() -> int:
        return tokens[index][0] if index < len(tokens) else 0

    def take() -> tuple[int, str]:
        nonlocal index
        if index >= len(tokens):
            raise RuleError("meta: expression ends too early")
        index += 1
        return tokens[index - 1]

    def disjunction(depth: int) -> Expr:
        node = conjunction(depth)
        while peek() == 2:
            take()
            node = ("||", node, conjunction(depth))
        return node

    def conjunction(depth: int) -> Expr:
        node = unary(depth)
        while peek() == 1:
            take()
            node = ("&&", node, unary(depth))
        return node

    def unary(depth: int) -> Expr:
        if depth > 50:
            raise RuleError("meta: nested too deeply")
        kind, value = take()
        if kind == 3:
            return ("!", unary(depth + 1))
        if kind == 4:
            node = disjunction(depth + 1)
            if take()[0] != 5:
                raise RuleError("meta: missing ')'")
            return node
        if kind == 6:
            return value
        raise RuleError(f"meta: unexpected {value!r}")

    tree = disjunction(0)
    if index != len(tokens):
        raise RuleError(f"meta: unexpected {tokens[index][1]!r}")
    return tree


def names_in(expr: Expr) -> set[str]:
    if isinstance(expr, str):
        return {expr}
    return set().union(*(names_in(e) for e in expr[1:]))


def evaluate(expr: Expr, hits: Callable[[str], bool]) -> bool:
    if isinstance(expr, str):
        return hits(expr)
    if expr[0] == "!":
        return not evaluate(expr[1], hits)
    if expr[0] == "&&":
        return evaluate(expr[1], hits) and evaluate(expr[2], hits)
    return evaluate(expr[1], hits) or evaluate(expr[2], hits)


Hits = Callable[[Sequence[bool]], bool]


def compile_meta(expr: Expr, index: Mapping[str, int]) -> Hits:
    """``expr`` as a function of the hits by position (``index``: name -> position);
    a name not in ``index`` is false, as in ``evaluate``."""
    if isinstance(expr, str):
        if expr not in index:
            return lambda hits: False
        return itemgetter(index[expr])
    if expr[0] == "!":
        inner = compile_meta(expr[1], index)
        return lambda hits: not inner(hits)
    left, right = compile_meta(expr[1], index), compile_meta(expr[2], index)
    if expr[0] == "&&":
        return lambda hits: left(hits) and right(hits)
    return lambda hits: left(hits) or right(hits)
