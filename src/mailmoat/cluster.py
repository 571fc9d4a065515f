"""Cluster glue: the classifier model shared through the store.

Contract: ``start_model_sync(services)`` starts a background task that, every
``[cluster] model_reload_interval`` seconds, reads the shared model's version
counter from the store (or, when ``classifier.model_path`` names a model
file, that file's version: ``mailmoat.feedback.service.model_loaders``) and,
when it differs from the version this process holds, loads the model and
publishes it: ``services.extras["classifier_model"]`` is replaced (one
reference swap, so a scoring check sees either the old or the new model,
never a mix) and each callable in
``services.extras["classifier_model_listeners"]`` is called with it.
``install(services)`` registers the same task as a ``serve`` starter/stopper.

The model persistence itself belongs to ``mailmoat.classify``: this module
calls its ``load_from_store(store)`` (returning the model with its
``version``, or None when the store holds none) and, when present, a cheap
``stored_version(store)`` (the counter alone; without it every poll loads the
model and compares versions). A missing API leaves the sync off, logged once.

Consistency: learning on one node bumps the version when it saves; every
other node sees the new model within ``model_reload_interval`` plus one load
(last writer wins; the version only grows). A store failure during a poll
keeps the model in hand and is retried at the next poll: scoring never waits
for the store.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from mailmoat.checks.base import Services
from mailmoat.core.tasks import cancel_and_wait
from mailmoat.store.base import StoreError

if TYPE_CHECKING:
    from mailmoat.smtp.server import Gateway

log = logging.getLogger("mailmoat.cluster")

MODEL_KEY = "classifier_model"
LISTENERS_KEY = "classifier_model_listeners"

Loader = Callable[[Any], Awaitable[Any]]


def _classify_api() -> tuple[Loader | None, Loader | None]:
    for name in ("mailmoat.classify", "mailmoat.classify.store", "mailmoat.classify.persist"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        load = getattr(module, "load_from_store", None)
        if load is not None:
            return load, getattr(module, "stored_version", None)
    return None, None


class ModelSync:
    def __init__(
        self,
        services: Services,
        interval: float,
        load: Loader,
        version: Loader | None = None,
    ) -> None:
        self.services = services
        self.interval = interval
        self._load = load
        self._version = version
        self.version: int | None = None
        self.reloads = 0
        self._task: asyncio.Task[None] | None = None

    async def check_once(self) -> bool:
        """Load the shared model if its version changed; True when it did."""
        store = self.services.store
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
        self.version = version
        self.reloads += 1
        self.services.extras[MODEL_KEY] = model
        for listener in self.services.extras.get(LISTENERS_KEY, []):
            listener(model)
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
    load, version = _classify_api()
    if file_mode:
        # The model file is the single source of truth (mailmoat.feedback).
        from mailmoat.feedback.service import model_loaders

        load, version = model_loaders(services.config)
    if load is None:
        log.info("classifier has no shared model API yet; model sync off")
        return None
    sync = ModelSync(services, interval, load, version)
    sync.start()
    return sync


def install(services: Services) -> None:
    """Run the model sync inside ``mailmoat serve`` (starter/stopper hooks)."""
    state: dict[str, ModelSync] = {}

    async def start(_gateway: Gateway) -> None:
        sync = start_model_sync(services)
        if sync is not None:
            state["sync"] = sync
            services.extras["model_sync"] = sync

    async def stop() -> None:
        sync = state.pop("sync", None)
        if sync is not None:
            await sync.stop()

    services.extras.setdefault("starters", []).append(start)
    services.extras.setdefault("stoppers", []).append(stop)
