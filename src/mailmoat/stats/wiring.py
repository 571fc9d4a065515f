"""Hooking statistics (and the dashboard) into a running gateway.

Contract: ``install(services)`` registers, in ``services.extras``, a
``starters`` hook that adds a ``StatsRecorder`` to the gateway's pipeline
recorders (carried over on SIGHUP reload by the gateway), counts accepted
connections, starts the periodic flush and, with ``[web] enabled``, the
dashboard; and a ``stoppers`` hook that stops the dashboard and flushes the
counters a last time. A dashboard that cannot bind is logged and skipped (the
gateway keeps running); a dashboard configured unsafely (non-loopback without
a password) raises ``ConfigError`` so ``mailmoat serve`` refuses to start.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from mailmoat.checks.base import Services
from mailmoat.stats.recorder import StatsRecorder

if TYPE_CHECKING:
    from mailmoat.smtp.server import Gateway

log = logging.getLogger("mailmoat.stats")


def attach(gateway: Gateway, recorder: StatsRecorder) -> None:
    """Record the gateway's transactions and count its connections."""
    if recorder not in gateway.pipeline.recorders:
        gateway.pipeline.recorders.append(recorder)
    if recorder.count_connection not in gateway.connection_observers:
        gateway.connection_observers.append(recorder.count_connection)


def install(services: Services) -> StatsRecorder | None:
    """Register the hooks; returns the recorder (None with stats disabled,
    the dashboard then still runs when enabled, showing what is stored)."""
    config = services.config
    if services.store is None or not (config.stats.enabled or config.web.enabled):
        return None
    recorder = None
    if config.stats.enabled:
        recorder = StatsRecorder(services.store, config.stats, config.node)
        services.extras["stats_recorder"] = recorder
    state: dict[str, Any] = {}

    async def start(gateway: Gateway) -> None:
        if recorder is not None:
            attach(gateway, recorder)
            await recorder.start()
        # One dashboard per gateway: with several workers, the primary's.
        if config.web.enabled and services.extras.get("primary", True):
            from mailmoat.web.server import start_dashboard

            state["web"] = await start_dashboard(
                lambda: gateway.config, services.store, recorder=recorder, gateway=gateway
            )
            services.extras["dashboard"] = state["web"]

    async def stop() -> None:
        web = state.pop("web", None)
        if web is not None:
            await web.stop()
        if recorder is not None:
            await recorder.stop()

    services.extras.setdefault("starters", []).append(start)
    services.extras.setdefault("stoppers", []).append(stop)
    return recorder
