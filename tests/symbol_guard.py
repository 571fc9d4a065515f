"""Every symbol mailmoat's own code adds must be declared by a check's spec.

An autouse fixture wraps ``Evidence.add`` for every test: a symbol added
from a ``mailmoat`` module must be declared by a spec (exactly or by a
family prefix; ``mailmoat.checks.registry.find_symbol``). The rules check is
the exception: its symbols are the names of the loaded rules (they are
checked against the rule set in tests/checks/test_symbols_declared.py).
Tests' own fake checks (code outside ``mailmoat``) may add any name, and a
test marked ``any_symbols`` (one exercising ``CheckSpec`` itself) too.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from mailmoat.checks.registry import find_symbol
from mailmoat.core.symbols import Evidence

_RULE_MODULES = ("mailmoat.checks.rules",)
SEEN: set[str] = set()


@pytest.fixture(autouse=True)
def _declared_symbols_only(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    if request.node.get_closest_marker("any_symbols"):
        yield
        return
    original = Evidence.add

    def add(self: Evidence, name: str, score: float, detail: str = "") -> None:
        caller = sys._getframe(1).f_globals.get("__name__", "")
        if caller.startswith("mailmoat.") and caller not in _RULE_MODULES:
            assert find_symbol(name) is not None, f"{caller} added undeclared symbol {name}"
            SEEN.add(name)
        original(self, name, score, detail)

    monkeypatch.setattr(Evidence, "add", add)
    yield
