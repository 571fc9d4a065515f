"""Cluster glue: the classifier model shared through the store.

Contract: ``start_model_sync(services)`` starts a background task that, every
``[cluster] model_reload_interval`` seconds, reads the shared model's version
counter from the store (``mailmoat.classify.stored_version``) and, when it
differs from the version this process holds (``services.model.version``),
loads the model (``load_from_store``; when ``classifier.model_path`` names a
model file, that file is the model's one home and is polled instead:
``mailmoat.feedback.service.model_loaders``) and publishes it to
``services.model``, the holder every classifier check scores with. It
returns None (no task) with the interval at 0 or without a store.
``mailmoat.runtime`` starts and stops it for every door that scores mail.

Consistency: learning on one node bumps the version when it saves; every
other node sees the new model within ``model_reload_interval`` plus one load
(last writer wins; the version only grows). A store failure during a poll
keeps the model in hand and is retried at the next poll: scoring never waits
for the store.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from mailmoat.checks.base import Services
from mailmoat.classify import Model, load_from_store, stored_version
from mailmoat.core.tasks import cancel_and_wait
from mailmoat.store.base import Store, StoreError

log = logging.getLogger("mailmoat.cluster")

Loader = Callable[[Store | None], Awaitable[Model | None]]
VersionReader = Callable[[Store | None], Awaitable[int | None]]


class ModelSync:
    def __init__(
        self,
        services: Services,
        interval: float,
        load: Loader = load_from_store,
        version: VersionReader | None = stored_version,
    ) -> None:
        self.services = services
        self.interval = interval
        self._load = load
        self._version = version
        self.reloads = 0
        self._task: asyncio.Task[None] | None = None

    @property
    def version(self) -> int | None:
        return self.services.model.version

    async def check_once(self) -> bool:
        """Load the shared model if its version changed; True when it did."""
        store = self.services.store
        if store is None and not self.services.config.classifier.model_path:
            return False
        if self._version is not None:
            stored = await self._version(store)
            if stored is None or stored == self.version:
                return False
        model = await self._load(store)
        if model is None:
            return False
        version = int(getattr(model, "version", 0))
        if version == self.version:
            return False
        self.reloads += 1
        self.services.model.publish(model)
        log.info("classifier model version %d loaded", version)
        return True

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            try:
                await self.check_once()
            except StoreError as exc:
                log.warning("classifier model reload skipped, store unavailable: %s", exc)
            except Exception:
                log.exception("classifier model reload failed")
            await asyncio.sleep(self.interval)

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None


def start_model_sync(services: Services) -> ModelSync | None:
    interval = services.config.cluster.model_reload_interval
    file_mode = bool(services.config.classifier.model_path)
    if interval <= 0 or (services.store is None and not file_mode):
        return None
    if file_mode:
        # The model file is the single source of truth (mailmoat.feedback).
        from mailmoat.feedback.service import model_loaders

        load, version = model_loaders(services.config)
        sync = ModelSync(services, interval, load, version)
    else:
        sync = ModelSync(services, interval)
    sync.start()
    return sync
