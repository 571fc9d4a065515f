"""The order checks run in, from the checks each one ``requires``.

Contract: ``validate(specs)`` raises ``RequirementError`` when a spec
requires a name no spec has, when requirements form a cycle, or when a
check requires one that first runs at a later stage than one of its own
(it would read a result not made yet). The registry calls it once, when it
first collects the specs: such a spec is a bug, refused before any mail.

``wave_numbers(members, requires)`` places each (name, stage) member in a
wave of its stage: a check whose required checks do not run at its stage
(none, done at an earlier stage, or not built: disabled in config) is in
wave 0; any other is one wave after the latest of the required checks of its
stage. ``waves(checks, requires)`` groups built checks that way, each wave in
the checks' own order. Checks of a wave run concurrently; the runner skips
the later waves once a wave allowlists the client, so a check the allowlist
should spare requires ``lists`` where both run at one stage. A required
check that is disabled leaves its result at its default ("no result"): the
dependent still runs and must read that as nothing found.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TypeVar

from mailmoat.checks.base import Check
from mailmoat.checks.spec import CheckSpec
from mailmoat.core.symbols import Stage

_STAGES = tuple(Stage)

CheckT = TypeVar("CheckT", bound=Check)


class RequirementError(ValueError):
    """A check's ``requires`` cannot be met: a bug in that check's spec."""


def validate(specs: Iterable[CheckSpec]) -> None:
    """Every requirement names a check that runs no later; no cycles."""
    by_name = {spec.name: spec for spec in specs}
    for spec in by_name.values():
        for needed in spec.requires:
            required = by_name.get(needed)
            if required is None:
                raise RequirementError(f"check {spec.name} requires {needed!r}: no such check")
            first = min(_STAGES.index(stage) for stage in required.stages)
            for stage in spec.stages:
                if _STAGES.index(stage) < first:
                    raise RequirementError(
                        f"check {spec.name} at {stage} requires {needed}, which first runs"
                        f" later (at {_STAGES[first]})"
                    )
    requires = {name: spec.requires for name, spec in by_name.items()}
    for name in requires:
        _cycle_from(name, requires, [])


def _cycle_from(name: str, requires: Mapping[str, Sequence[str]], path: list[str]) -> None:
    if name in path:
        cycle = " -> ".join([*path[path.index(name) :], name])
        raise RequirementError(f"checks require each other in a cycle: {cycle}")
    path.append(name)
    for needed in requires.get(name, ()):
        _cycle_from(needed, requires, path)
    path.pop()


def wave_numbers(
    members: Sequence[tuple[str, Stage]], requires: Mapping[str, Sequence[str]]
) -> list[int]:
    """Each member's wave within its stage (see the module's contract); a
    name missing from ``requires`` requires nothing."""
    numbers: dict[tuple[str, Stage], int] = {}
    present = set(members)

    def number(key: tuple[str, Stage], path: tuple[str, ...]) -> int:
        found = numbers.get(key)
        if found is not None:
            return found
        name, stage = key
        if name in path:
            cycle = " -> ".join([*path[path.index(name) :], name])
            raise RequirementError(f"checks require each other in a cycle: {cycle}")
        earlier = [
            number((needed, stage), (*path, name))
            for needed in requires.get(name, ())
            if (needed, stage) in present
        ]
        numbers[key] = found = max(earlier) + 1 if earlier else 0
        return found

    return [number(member, ()) for member in members]


def waves(
    checks: Sequence[CheckT], requires: Mapping[str, Sequence[str]]
) -> dict[Stage, list[list[CheckT]]]:
    """The checks of every stage grouped in waves, each in ``checks`` order."""
    members = [(check.name, check.stage_enum) for check in checks]
    grouped: dict[Stage, list[list[CheckT]]] = {stage: [] for stage in Stage}
    for check, (_, stage), wave in zip(
        checks, members, wave_numbers(members, requires), strict=True
    ):
        stage_waves = grouped[stage]
        while len(stage_waves) <= wave:
            stage_waves.append([])
        stage_waves[wave].append(check)
    return grouped
