"""Exceptions as log text.

``describe(exc)`` is one line naming the problem: the exception's type and
its message with every run of whitespace (newlines included) made one space,
for ``reload failed`` lines and the like.
"""

from __future__ import annotations


def describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
