"""Which check modules exist, in the order they are built.

Each module listed exposes ``build(services) -> list[Check]``; a module
returns an empty list when its feature is disabled in config.
``check_names()`` is every name a ``[checks.NAME]`` section may use.
"""

from __future__ import annotations

import functools
import importlib
import inspect

from mailmoat.checks.base import Check, Services

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
def check_names() -> frozenset[str]:
    """The ``name`` of every check class the listed modules define."""
    names: set[str] = set()
    for module_name in CHECK_MODULES:
        module = importlib.import_module(module_name)
        for _attr, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, Check) and isinstance(getattr(value, "name", None), str):
                names.add(value.name)
    return frozenset(names)
