"""What the non-SMTP fronts (milter, policy) share: process plumbing.

Contract: ``FrontRuntime.open(config)`` opens the services (store, resolver),
builds the same pipeline as ``mailmoat serve``, attaches the statistics
recorder (node name from ``[stats] node``) and the cluster glue (shared
classifier model reload, ``mailmoat.cluster``); ``close()`` undoes it all.
Records come from ``mailmoat.core.record.record_for``, as for the SMTP front.
``serve_until_signalled`` runs an ``asyncio.Server`` until SIGTERM/SIGINT.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from mailmoat.checks.base import Services
from mailmoat.checks.registry import build_checks
from mailmoat.config import Config
from mailmoat.pipeline import Pipeline
from mailmoat.runtime import build_services

log = logging.getLogger("mailmoat.front")


@dataclass
class FrontRuntime:
    config: Config
    services: Services
    pipeline: Pipeline
    node: str
    _closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    @classmethod
    async def open(cls, config: Config) -> FrontRuntime:
        from mailmoat.cluster import start_model_sync
        from mailmoat.stats.recorder import StatsRecorder

        services = await build_services(config)
        pipeline = Pipeline(services, build_checks(services))
        runtime = cls(config, services, pipeline, config.node)
        if config.stats.enabled and services.store is not None:
            recorder = StatsRecorder(services.store, config.stats, runtime.node)
            pipeline.recorders.append(recorder)
            services.extras["stats_recorder"] = recorder
            await recorder.start()
            runtime._closers.append(recorder.stop)
        sync = start_model_sync(services)
        if sync is not None:
            runtime._closers.append(sync.stop)
        return runtime

    async def close(self) -> None:
        for closer in reversed(self._closers):
            try:
                await closer()
            except Exception:
                log.exception("front shutdown step failed")
        if self.services.store is not None:
            await self.services.store.close()


async def serve_until_signalled(server: asyncio.Server, name: str) -> None:
    """Serve until SIGTERM/SIGINT, then stop listening and let sessions end."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    for sock in server.sockets:
        host, port = sock.getsockname()[:2]
        log.info("%s listening on %s:%s", name, host, port)
    await stop.wait()
    log.info("%s shutting down", name)
    server.close()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(server.wait_closed(), 10)
