"""Process plumbing shared by the long-running commands.

``build_services`` opens what checks need (store, resolver) from config;
``run_loop`` runs a coroutine on uvloop when it is installed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from mailmoat.checks.base import Services
from mailmoat.config import Config
from mailmoat.dns import resolver_from_config
from mailmoat.store import open_store


async def build_services(config: Config) -> Services:
    store = open_store(config.store.url)
    resolver = resolver_from_config(config.dns)
    return Services(config=config, store=store, resolver=resolver)


def run_loop(main: Coroutine[Any, Any, int]) -> int:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)
