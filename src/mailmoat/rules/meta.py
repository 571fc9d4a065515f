"""Meta rule expressions: parsed (never ``eval``-ed as text), then compiled.

Contract: ``parse_meta`` turns ``A && (B || !C)`` or SpamAssassin's
arithmetic ``(A + B + C) > 1`` into a small tree or raises ``RuleError``.
A tree is a rule name, ``("num", value)``, ``("!", x)`` or ``(op, a, b)``
with ``op`` one of ``|| && == != < > <= >= + - * /`` (Perl's precedence:
``!``, then ``* /``, ``+ -``, comparisons, ``&&``, ``||``). A name stands for
the rule's hit count (0 or 1, more for rules that count every match); the
operators behave as in Perl (``&&`` and ``||`` give an operand, ``!`` and
comparisons 0 or 1, ``x / 0`` is 0 here). A meta hits when its value is not
zero. ``evaluate`` and ``compile_meta`` evaluate one tree; ``MetaCompiler``
turns many into one Python function generated from the trees (names become
list indexes, numbers ``float`` literals: no text of a rule file reaches the
generated code), a name it does not know being 0.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, MutableSequence, Sequence
from typing import Any

from mailmoat.rules.model import Expr, RuleError

_TOKEN = re.compile(
    r"\s*(?:(&&|\|\||>=|<=|==|!=|[!()<>+*/-])|([A-Za-z_][A-Za-z0-9_]*)|(\d+(?:\.\d+)?|\.\d+))"
)
_LEVELS: tuple[tuple[str, ...], ...] = (
    ("||",),
    ("&&",),
    ("==", "!=", "<", ">", "<=", ">="),
    ("+", "-"),
    ("*", "/"),
)
MAX_TOKENS = 2000
MAX_DEPTH = 50

Hits = Callable[[Sequence[float]], float]


def parse_meta(text: str) -> Expr:
    """Parse a meta expression; ``RuleError`` on anything else."""
    tokens: list[tuple[str, str]] = []  # (kind: "op" | "name" | "num", text)
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise RuleError(f"meta: unexpected {text[pos:].strip()[:20]!r}")
        kind = ("op", "name", "num")[(match.lastindex or 1) - 1]
        tokens.append((kind, match.group(match.lastindex or 1)))
        pos = match.end()
    if len(tokens) > MAX_TOKENS:
        raise RuleError("meta: expression too long")
    index = 0

    def peek() -> str:
        return tokens[index][1] if index < len(tokens) and tokens[index][0] == "op" else ""

    def take() -> tuple[str, str]:
        nonlocal index
        if index >= len(tokens):
            raise RuleError("meta: expression ends too early")
        index += 1
        return tokens[index - 1]

    def binary(level: int, depth: int) -> Expr:
        if level == len(_LEVELS):
            return unary(depth)
        node = binary(level + 1, depth)
        comparison = level == 2
        while peek() in _LEVELS[level]:
            operator = take()[1]
            node = (operator, node, binary(level + 1, depth))
            if comparison:
                break  # comparisons do not chain
        return node

    def unary(depth: int) -> Expr:
        if depth > MAX_DEPTH:
            raise RuleError("meta: nested too deeply")
        kind, value = take()
        if kind == "name":
            return value
        if kind == "num":
            return ("num", float(value))
        if value == "!":
            return ("!", unary(depth + 1))
        if value == "(":
            node = binary(0, depth + 1)
            if take()[1] != ")":
                raise RuleError("meta: missing ')'")
            return node
        raise RuleError(f"meta: unexpected {value!r}")

    tree = binary(0, 0)
    if index != len(tokens):
        raise RuleError(f"meta: unexpected {tokens[index][1]!r}")
    return tree


def names_in(expr: Expr) -> set[str]:
    if isinstance(expr, str):
        return {expr}
    if expr[0] == "num":
        return set()
    return set().union(*(names_in(e) for e in expr[1:]))


def polarity(expr: Expr, sign: int = 1) -> dict[str, set[int]]:
    """For each name, the signs with which it moves the result: +1 where more
    hits can only make the meta more true, -1 where they can make it less
    true (under ``!``, on the small side of ``<``...), both where unknown
    (``==``, ``!=``, ``*``, ``/``)."""
    found: dict[str, set[int]] = {}

    def add(sub: Expr, signs: Iterable[int]) -> None:
        for name, values in polarity_all(sub, signs).items():
            found.setdefault(name, set()).update(values)

    def polarity_all(sub: Expr, signs: Iterable[int]) -> dict[str, set[int]]:
        result: dict[str, set[int]] = {}
        for value in signs:
            for name, values in polarity(sub, value).items():
                result.setdefault(name, set()).update(values)
        return result

    if isinstance(expr, str):
        return {expr: {sign}}
    operator = expr[0]
    if operator == "num":
        return {}
    if operator == "!":
        add(expr[1], [-sign])
    elif operator in ("&&", "||", "+"):
        add(expr[1], [sign])
        add(expr[2], [sign])
    elif operator == "-" or operator in (">", ">="):
        add(expr[1], [sign])
        add(expr[2], [-sign])
    elif operator in ("<", "<="):
        add(expr[1], [-sign])
        add(expr[2], [sign])
    else:
        add(expr[1], [1, -1])
        add(expr[2], [1, -1])
    return found


def replace_names(expr: Expr, values: Mapping[str, float]) -> Expr:
    """``expr`` with the names in ``values`` replaced by those numbers."""
    if isinstance(expr, str):
        return ("num", float(values[expr])) if expr in values else expr
    if expr[0] == "num":
        return expr
    return (expr[0], *(replace_names(e, values) for e in expr[1:]))


def _apply(operator: str, left: float, right: float) -> float:
    if operator == "+":
        return left + right
    if operator == "-":
        return left - right
    if operator == "*":
        return left * right
    if operator == "/":
        return left / right if right else 0.0
    return float(
        {
            "==": left == right,
            "!=": left != right,
            "<": left < right,
            ">": left > right,
            "<=": left <= right,
            ">=": left >= right,
        }[operator]
    )


def evaluate(expr: Expr, hits: Callable[[str], float]) -> float:
    """The value of ``expr`` (``hits``: a rule name's count); true when not 0."""
    if isinstance(expr, str):
        return hits(expr)
    operator = expr[0]
    if operator == "num":
        return float(expr[1])
    if operator == "!":
        return float(not evaluate(expr[1], hits))
    left = evaluate(expr[1], hits)
    if operator == "&&":
        return evaluate(expr[2], hits) if left else left
    if operator == "||":
        return left if left else evaluate(expr[2], hits)
    return _apply(operator, left, evaluate(expr[2], hits))


def compile_meta(expr: Expr, index: Mapping[str, int]) -> Hits:
    """``expr`` as a function of the hits by position (``index``: name -> position);
    a name not in ``index`` is 0, as in ``evaluate``."""
    return lambda hits: evaluate(expr, lambda name: hits[index[name]] if name in index else 0)


def _operands(expr: Expr, operator: str) -> list[Expr]:
    """The operands of a left-nested chain of ``operator`` (flat: no deep nesting)."""
    found: list[Expr] = []
    while not isinstance(expr, str) and expr[0] == operator:
        found.append(expr[2])
        expr = expr[1]
    found.append(expr)
    return found[::-1]


def _source(expr: Expr, index: Mapping[str, int]) -> str:
    if isinstance(expr, str):
        return f"h[{index[expr]}]" if expr in index else "0"
    operator = expr[0]
    if operator == "num":
        return repr(float(expr[1]))
    if operator == "!":
        return f"(not {_source(expr[1], index)})"
    if operator in ("&&", "||", "+"):
        joiner = {"&&": " and ", "||": " or ", "+": " + "}[operator]
        return "(" + joiner.join(_source(e, index) for e in _operands(expr, operator)) + ")"
    left, right = _source(expr[1], index), _source(expr[2], index)
    if operator == "/":
        return f"_div({left}, {right})"
    assert operator in ("==", "!=", "<", ">", "<=", ">=", "-", "*")
    return f"({left} {operator} {right})"


class MetaCompiler:
    """Collects metas (each against the names it may see) into one function
    that sets ``hits[position]`` to 1 or 0 for each, in the order added."""

    def __init__(self) -> None:
        self.lines = ["def _metas(h):"]

    def add(self, position: int, expr: Expr, index: Mapping[str, int]) -> None:
        """``index``: name -> position of the rules this meta sees (others are 0)."""
        self.lines.append(f"    h[{position}] = 1 if {_source(expr, index)} else 0")

    def source(self) -> str:
        """The function's Python source (what ``build`` compiles)."""
        return "\n".join([*self.lines, "    return None"])

    def build(self) -> Callable[[MutableSequence[int]], None]:
        return build_metas(self.source())


def build_metas(source: str) -> Callable[[MutableSequence[int]], None]:
    """The function ``MetaCompiler.source`` wrote."""
    namespace: dict[str, Any] = {"_div": lambda a, b: a / b if b else 0}
    exec(compile(source, "<meta rules>", "exec"), namespace)
    function: Callable[[MutableSequence[int]], None] = namespace["_metas"]
    return function
