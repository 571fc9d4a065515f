"""What a check declares about itself: ``CheckSpec`` and ``SymbolSpec``.

Contract: every module in ``mailmoat.checks`` that builds checks exports one
``SPEC = CheckSpec(...)``: the check's name (its ``[checks.NAME]`` key), the
stages it runs at, the checks whose results it reads (``requires``), every
symbol it can add with its default score, one-line description and group,
the *families* of symbols whose names are made at run time (``DNSBL_<SITE>``:
a prefix and a description) and the runner's defaults (timeout, fail mode).
The registry (``mailmoat.checks.registry``) collects the specs; the symbol
listing (``mailmoat symbols``), the dashboard's explanations, the symbol
reference (docs/symbols.md) and the validation of ``[scores]`` and
``[checks.*]`` come from them.

A check adds its symbols through its spec (``SPEC.add(evidence, NAME,
detail)``), which takes the declared default score: one source for names
and scores. Adding a name the spec does not declare raises ``KeyError`` (a
bug, which the runner turns into a check failure and the tests catch).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mailmoat.core.symbols import Evidence, Stage


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    """One symbol: ``score`` is the default (``[scores]`` overrides it);
    None when the check computes it (a curve, a configured weight)."""

    name: str
    score: float | None
    description: str
    group: str


@dataclass(frozen=True, slots=True)
class FamilySpec:
    """Symbols named at run time: every name starting with ``prefix``
    (``pattern`` shows the shape, e.g. ``DNSBL_<SITE>``)."""

    prefix: str
    pattern: str
    description: str
    group: str
    # None: the check computes it (a site's configured weight).
    score: float | None = None


@dataclass(frozen=True)
class CheckSpec:
    name: str
    stages: tuple[Stage, ...]
    summary: str
    symbols: tuple[SymbolSpec, ...] = ()
    families: tuple[FamilySpec, ...] = ()
    # Checks whose results this one reads: the runner runs it after them
    # (``mailmoat.checks.order``); the allowlist verdict counts, so a check an
    # allowlist spares requires "lists" at the stages both run.
    requires: tuple[str, ...] = ()
    # The runner's defaults for ``[checks.NAME] timeout`` and ``fail_mode``.
    timeout: float = 10.0
    fail_mode: str = "accept"
    _by_name: dict[str, SymbolSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_name = {symbol.name: symbol for symbol in self.symbols}
        if len(by_name) != len(self.symbols):
            raise ValueError(f"check {self.name}: a symbol is declared twice")
        for symbol in self.symbols:
            if not symbol.description.strip():
                raise ValueError(f"check {self.name}: {symbol.name} has no description")
        object.__setattr__(self, "_by_name", by_name)

    def symbol(self, name: str) -> SymbolSpec:
        """The declared symbol; KeyError for a name this check does not declare."""
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"check {self.name} does not declare symbol {name}") from None

    def family(self, name: str) -> FamilySpec | None:
        """The family a run-time name belongs to (longest prefix), or None."""
        found = [f for f in self.families if name.startswith(f.prefix)]
        return max(found, key=lambda f: len(f.prefix)) if found else None

    def declares(self, name: str) -> bool:
        return name in self._by_name or self.family(name) is not None

    def score(self, name: str) -> float:
        """The declared default score of a symbol with a fixed score."""
        score = self.symbol(name).score
        if score is None:
            raise KeyError(f"check {self.name}: {name} has no fixed score; pass one")
        return score

    def add(
        self, evidence: Evidence, name: str, detail: str = "", *, score: float | None = None
    ) -> None:
        """``evidence.add`` with the declared default score; a symbol whose
        score is computed (or one of a family) takes ``score``."""
        fixed: float | None
        if name in self._by_name:
            fixed = self._by_name[name].score
        else:
            family = self.family(name)
            if family is None:
                raise KeyError(f"check {self.name} does not declare symbol {name}")
            fixed = family.score
        if (fixed is None) == (score is None):
            need = "needs a computed score" if score is None else "has a declared score"
            raise KeyError(f"check {self.name}: {name} {need}")
        evidence.add(name, fixed if fixed is not None else float(score or 0.0), detail)
