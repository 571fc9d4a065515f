"""The known counting rules' counters: the same count as ``finditer`` on any text."""

from __future__ import annotations

import random
import re

import pytest

from mailmoat.rules import counters

KNOWN = sorted(counters._KNOWN)
PIECES = [
    "\n", "\n", "\n\n", ">", "> ", " ", "x", "a", "<", "=", "<a href=", "<A HREF=", "<A href=",
    "<a HREF=", "<img src=", "<IMG SRC=", "<Img Src=", "<a href", "img src=", "\xe9", "\u0130",
]  # fmt: skip


def _text(rng: random.Random) -> str:
    return "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 14)))


@pytest.mark.parametrize(("pattern", "flags"), KNOWN)
def test_counter_counts_as_finditer_on_random_texts(pattern: str, flags: int) -> None:
    regex = re.compile(pattern, flags)
    count = counters.counter(regex)
    assert count is not None
    rng = random.Random(pattern)
    counted = 0
    for _ in range(20000):
        text = _text(rng)
        expected = sum(1 for _ in regex.finditer(text))
        assert count(text) == expected, repr(text)
        counted += expected > 0
    assert counted > 1000  # the texts do hold matches


def test_counter_on_a_real_shaped_body() -> None:
    body = (
        "<html>\n<body>\n<p>Hi <a href=x>one</a> <a href=y>two</a></p>\n"
        "> quoted <a href=z>\n\n<a href=after-empty>\n<A HREF=upper>\n"
    )
    regex = re.compile(r"^[^>].*?<a href=", re.IGNORECASE | re.MULTILINE | re.ASCII)
    count = counters.counter(regex)
    assert count is not None
    assert count(body) == sum(1 for _ in regex.finditer(body)) == 2


def test_other_regexes_have_no_counter() -> None:
    assert counters.counter(re.compile(r"^[^>].*?<a href=", re.MULTILINE)) is None
    assert counters.counter(re.compile(r"^[^>].*?<img src=['\"]data", re.I | re.M | re.A)) is None
