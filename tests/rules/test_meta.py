"""Meta expressions: the parser refuses what is not a meta, precedence."""

from __future__ import annotations

import pytest

from mailmoat.rules import RuleError, evaluate, parse_meta
from mailmoat.rules.meta import MetaCompiler


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("A", True),
        ("!A", True),
        ("A && B || C", True),
        ("!(A || B) && !!C", True),
        ("A &&", False),
        ("(A", False),
        ("A B", False),
        ("A & B", False),
        ("__import__('os')", False),
        ("(" * 60 + "A" + ")" * 60, False),
    ],
)
def test_meta_parser(text: str, ok: bool) -> None:
    if ok:
        parse_meta(text)
    else:
        with pytest.raises(RuleError):
            parse_meta(text)


def test_meta_precedence() -> None:
    tree = parse_meta("A || B && !C")
    assert evaluate(tree, {"A": False, "B": True, "C": False}.__getitem__)
    assert not evaluate(tree, {"A": False, "B": True, "C": True}.__getitem__)


@pytest.mark.parametrize(
    ("text", "counts", "value"),
    [
        ("(A + B + C) > 1", {"A": 1, "B": 1, "C": 0}, 1.0),
        ("(A + B + C) > 1", {"A": 1, "B": 0, "C": 0}, 0.0),
        ("A + B >= 2 && !C", {"A": 1, "B": 1, "C": 0}, 1.0),
        ("A > 2", {"A": 3}, 1.0),  # a counting rule's count
        ("A * 2 + B == 3", {"A": 1, "B": 1}, 1.0),
        ("A / 0", {"A": 1}, 0.0),  # no division error: 0
        ("A - B < 0", {"A": 0, "B": 1}, 1.0),
        ("A || B", {"A": 0, "B": 2}, 2.0),  # Perl: || gives the operand
        ("(A && B) + C", {"A": 1, "B": 1, "C": 1}, 2.0),
        ("0.5 < A", {"A": 1}, 1.0),
    ],
)
def test_meta_arithmetic(text: str, counts: dict[str, float], value: float) -> None:
    assert evaluate(parse_meta(text), counts.__getitem__) == value


@pytest.mark.parametrize("text", ["A > > 1", "A < 1 < 2", "1 +", "A ^ B"])
def test_meta_arithmetic_syntax_errors(text: str) -> None:
    with pytest.raises(RuleError):
        parse_meta(text)


def test_compiled_metas_agree_with_the_tree_walk() -> None:
    texts = ["(A + B + C) > 1", "A && !(B || C)", "A / B", "A + B + C + A + B", "!A == 0"]
    compiler = MetaCompiler()
    index = {"A": 0, "B": 1, "C": 2}
    for n, text in enumerate(texts):
        compiler.add(3 + n, parse_meta(text), index)
    run = compiler.build()
    for counts in ([0, 0, 0], [1, 0, 0], [1, 1, 0], [2, 0, 1], [0, 3, 3]):
        hits = [*counts, *[0] * len(texts)]
        run(hits)
        for n, text in enumerate(texts):
            named = dict(zip("ABC", counts, strict=True))
            assert hits[3 + n] == int(bool(evaluate(parse_meta(text), named.__getitem__)))
