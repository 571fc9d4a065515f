"""Process plumbing shared by the long-running commands.

``build_services`` opens what checks need (store, resolver) from config; a
store that cannot be opened (corrupted, unwritable) is logged as an error and
replaced by a ``RecoveringStore``: clients get the ``store.fail_mode``
answer (451 by default) until it opens, and the process never dies of it.
``run_loop`` runs a coroutine on uvloop when it is installed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from mailmoat.checks.base import Services
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


def run_loop(main: Coroutine[Any, Any, int]) -> int:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)
