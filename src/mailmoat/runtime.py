"""Process plumbing shared by the long-running commands.

``build_services`` opens what checks need (store, resolver) from config; a
store that cannot be opened (corrupted, unwritable) is logged as an error and
replaced by a ``RecoveringStore``: clients get the ``store.fail_mode``
answer (451 by default) until it opens, and the process never dies of it.
``rebuild`` is the reload path every long-running command shares (SIGHUP):
new services for a new config around the open store, and what the caller
builds from them, or an exception with the old runtime untouched;
``describe`` turns such an exception into one log line; ``run_loop`` runs a
coroutine on uvloop when it is installed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from mailmoat.checks.base import Services
from mailmoat.checks.classifier import LISTENERS_EXTRA
from mailmoat.config import Config
from mailmoat.dns import resolver_from_config
from mailmoat.store import Store, StoreError, open_store
from mailmoat.store.recovering import RecoveringStore

log = logging.getLogger("mailmoat.runtime")


async def build_services(config: Config) -> Services:
    url = config.store.url
    store: Store | RecoveringStore
    try:
        store = open_store(url)
    except StoreError as exc:
        log.error(
            "store cannot be opened, answering with store.fail_mode=%s until it can: %s",
            config.store.fail_mode,
            exc,
        )
        store = RecoveringStore(lambda: open_store(url), str(exc))
    resolver = resolver_from_config(config.dns)
    return Services(config=config, store=store, resolver=resolver)


Built = TypeVar("Built")


def rebuild(
    services: Services, config: Config, build: Callable[[Services], Built]
) -> tuple[Services, Built]:
    """Services for ``config`` sharing the open store, clock and extras of
    ``services`` (a new resolver only when ``[dns]`` changed), and
    ``build(new_services)``. Raises whatever building raises; the shared
    extras are then as they were (a build registers model listeners)."""
    listeners = services.extras.get(LISTENERS_EXTRA)
    kept = list(listeners) if isinstance(listeners, list) else None
    try:
        resolver = services.resolver
        if config.dns != services.config.dns:
            resolver = resolver_from_config(config.dns)
        fresh = Services(config, services.store, resolver, services.clock, services.extras)
        return fresh, build(fresh)
    except BaseException:
        if kept is not None:
            services.extras[LISTENERS_EXTRA] = kept
        raise


def describe(exc: BaseException) -> str:
    """One line naming the problem (for ``reload failed`` log lines)."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def run_loop(main: Coroutine[Any, Any, int]) -> int:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)
