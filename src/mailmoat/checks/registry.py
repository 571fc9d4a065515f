"""Which check modules exist, in the order they are built, and what they declare.

Each module listed exposes ``build(services) -> list[Check]`` (an empty list
when its feature is disabled in config) and ``SPEC``, its ``CheckSpec``.
``check_specs()`` are those specs, ``all_specs()`` adds the symbols no check
adds (the SMTP front's, the runner's: ``mailmoat.checks.doors``);
``runner_settings(config, name)`` is the check's ``[checks.NAME]`` section,
or its spec's runner defaults without one; ``check_names()`` is every name
a ``[checks.NAME]`` section may use; ``find_symbol(name)`` says which spec
declares a symbol, exactly or by a family prefix. ``requirements()`` maps
each check to the checks it requires (``mailmoat.checks.order`` makes the
runner's waves from it); the specs' requirements are validated when they
are first collected (``order.RequirementError``).
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Mapping

from mailmoat.checks.base import Check, Services
from mailmoat.checks.doors import FRONT_SPEC, RUNNER_SPEC
from mailmoat.checks.order import validate
from mailmoat.checks.spec import CheckSpec, FamilySpec, SymbolSpec
from mailmoat.config import CheckSettings, Config

CHECK_MODULES: tuple[str, ...] = (
    "mailmoat.checks.helo",
    "mailmoat.checks.headers",
    "mailmoat.checks.size",
    "mailmoat.checks.spf",
    "mailmoat.checks.dkim",
    "mailmoat.checks.dmarc",
    "mailmoat.checks.auth_results",
    "mailmoat.checks.urlbl",
    "mailmoat.checks.rules",
    "mailmoat.checks.classifier",
    "mailmoat.checks.attachments",
    "mailmoat.checks.bulk",
    "mailmoat.checks.lists",
    "mailmoat.checks.ratelimit",
    "mailmoat.checks.dnsbl",
    "mailmoat.checks.rdns",
    "mailmoat.checks.greylist",
    "mailmoat.checks.reputation",
)


def build_checks(services: Services) -> list[Check]:
    checks: list[Check] = []
    for module_name in CHECK_MODULES:
        module = importlib.import_module(module_name)
        for check in module.build(services):
            if services.config.check(check.name).enabled:
                checks.append(check)
    return checks


@functools.cache
def check_specs() -> tuple[CheckSpec, ...]:
    """Every check module's ``SPEC``, in ``CHECK_MODULES`` order."""
    specs: list[CheckSpec] = []
    for module_name in CHECK_MODULES:
        spec = importlib.import_module(module_name).SPEC
        if not isinstance(spec, CheckSpec):
            raise TypeError(f"{module_name}.SPEC is not a CheckSpec")
        specs.append(spec)
    validate(specs)
    return tuple(specs)


@functools.cache
def requirements() -> Mapping[str, tuple[str, ...]]:
    """Each check's name -> the names of the checks it requires."""
    return {spec.name: spec.requires for spec in check_specs()}


def all_specs() -> tuple[CheckSpec, ...]:
    """The checks' specs, then the SMTP front's and the runner's."""
    return (*check_specs(), FRONT_SPEC, RUNNER_SPEC)


@functools.cache
def check_names() -> frozenset[str]:
    """Every name a ``[checks.NAME]`` section may use."""
    return frozenset(spec.name for spec in check_specs())


def spec_of(check_name: str) -> CheckSpec:
    """The spec of a check by name; KeyError for no such check."""
    for spec in check_specs():
        if spec.name == check_name:
            return spec
    raise KeyError(f"no such check: {check_name}")


def runner_settings(config: Config, check_name: str) -> CheckSettings:
    """``[checks.NAME]`` when the file has it, else the spec's defaults (a
    name without a spec: the loader's defaults)."""
    section = config.checks.get(check_name)
    if section is not None:
        return section
    try:
        spec = spec_of(check_name)
    except KeyError:
        return config.check(check_name)
    return CheckSettings(timeout=spec.timeout, fail_mode=spec.fail_mode)


@functools.cache
def _symbol_index() -> dict[str, tuple[CheckSpec, SymbolSpec]]:
    index: dict[str, tuple[CheckSpec, SymbolSpec]] = {}
    for spec in all_specs():
        for symbol in spec.symbols:
            if symbol.name in index:
                raise ValueError(f"{symbol.name} is declared by {index[symbol.name][0].name} too")
            index[symbol.name] = (spec, symbol)
    return index


def find_symbol(name: str) -> tuple[CheckSpec, SymbolSpec | FamilySpec] | None:
    """The spec declaring ``name`` and its declaration (a family for names
    made at run time), or None when no check declares it."""
    exact = _symbol_index().get(name)
    if exact is not None:
        return exact
    found = [(spec, family) for spec in all_specs() if (family := spec.family(name))]
    if not found:
        return None
    return max(found, key=lambda pair: len(pair[1].prefix))
