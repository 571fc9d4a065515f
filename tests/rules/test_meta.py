"""Meta expressions: the parser refuses what is not a meta, precedence."""

from __future__ import annotations

import pytest

from mailmoat.rules import RuleError, evaluate, parse_meta


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
