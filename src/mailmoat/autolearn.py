"""Autolearn in the gateway: confident verdicts teach the shared model.

Contract: ``install(services, recorder)`` (``mailmoat.runtime``, for every
door that scores mail) makes an ``AutoLearner`` when ``[classifier]
autolearn`` is on and there is a store, and adds its ``observe`` to
``services.verdict_observers``: the pipeline calls it after every end-of-DATA
decision; it
asks the guard (``mailmoat.classify.autolearn.judge``) and queues the parsed
message with its label: no I/O, no learning on the transaction's path.
Messages answered with a temporary failure are skipped (their retry would be
learned twice), and so are allowlisted ones.

Every ``classifier.autolearn_flush_interval`` seconds, and at shutdown,
``flush()`` learns the queue into the model's one home
(``mailmoat.feedback.home_for``: the ``classifier.model_path`` file when
set, else the model shared through the store, seeded from the shipped
default; the dashboard, ``mailmoat learn`` and ``mailmoat.cluster`` use it): one load, the online
learning steps (train on error, as the model learns), one compare-and-set
save, retried on a concurrent save; then the new model is published to this
process's holder (``services.model``) at once, and reaches other gateways
by the cluster model sync. Loading and saving run in a worker thread with its own store
connection (a private in-memory store is used directly).

Counters: ``autolearn:spam`` / ``autolearn:ham`` in the statistics (per
message queued), shown on ``/metrics`` as ``mailmoat_autolearn_total``.
Failure mode: a failed flush is logged and its batch dropped; mail flow
never waits for it. Past ``autolearn_max_pending`` queued messages, new
ones are not learned (logged once per flush).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mailmoat.checks.base import Services
from mailmoat.classify import Model, ModelConflictError, extract
from mailmoat.classify.autolearn import judge
from mailmoat.config import Config
from mailmoat.core.scoring import Decision
from mailmoat.core.symbols import Action
from mailmoat.core.tasks import cancel_and_wait
from mailmoat.core.transaction import Transaction
from mailmoat.feedback.home import home_for
from mailmoat.store import open_store

if TYPE_CHECKING:
    from mailmoat.message import ParsedMessage

log = logging.getLogger("mailmoat.autolearn")

# Autolearn saves often; keep at most one of its versions an hour.
AUTOLEARN_ARCHIVE_AGE = 3600.0


class AutoLearner:
    def __init__(self, services: Services, count: Callable[[str], None] | None = None) -> None:
        self.services = services
        # Counts ``autolearn:<label>`` in the statistics (when they are on).
        self.count = count
        self.pending: list[tuple[ParsedMessage, bool]] = []
        self.dropped = 0
        self.learned = 0
        self.flushes = 0
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    # -- hot path (no I/O) --------------------------------------------------

    def observe(self, services: Services, tx: Transaction, decision: Decision) -> None:
        """Queue ``tx``'s message if the guard passes it; ``services`` are the
        pipeline's (their config, reloaded or not, holds the thresholds)."""
        settings = services.config.classifier
        if not settings.autolearn or decision.action is Action.SOFT_REJECT or tx.allowlisted:
            return
        verdict = judge(tx.all_symbols, settings)
        if verdict.label is None:
            return
        if len(self.pending) >= settings.autolearn_max_pending:
            self.dropped += 1
            return
        self.pending.append((tx.message, verdict.label == "spam"))
        if self.count is not None:
            self.count(f"autolearn:{verdict.label}")
        log.debug("autolearn queue_id=%s label=%s: %s", tx.queue_id, verdict.label, verdict.reason)

    # -- persistence ----------------------------------------------------------

    async def flush(self) -> int:
        """Learn the queued messages into the shared model; how many changed it."""
        async with self._lock:
            batch, self.pending = self.pending, []
            if self.dropped:
                log.warning("autolearn: %d messages over autolearn_max_pending", self.dropped)
                self.dropped = 0
            if not batch:
                return 0
            config = self.services.config
            store = self.services.store
            try:
                if ":memory:" in config.store.url:
                    model, changed = await learn_batch(config, store, batch)
                else:
                    model, changed = await asyncio.to_thread(_in_thread, config, batch)
            except Exception:
                log.exception("autolearn: %d messages not learned", len(batch))
                return 0
            self.flushes += 1
            self.learned += changed
            if model is not None:
                self._publish(model)
                log.info(
                    "autolearn: %d of %d messages changed the model, version %d",
                    changed,
                    len(batch),
                    model.version,
                )
            return changed

    def _publish(self, model: Model) -> None:
        # The holder's version too: the model sync need not load what we saved.
        self.services.model.publish(model)

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            # At least a second between saves, whatever the config says.
            await asyncio.sleep(max(1.0, self.services.config.classifier.autolearn_flush_interval))
            await self.flush()

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        await self.flush()


async def learn_batch(
    config: Config, store: Any, batch: list[tuple[ParsedMessage, bool]]
) -> tuple[Model | None, int]:
    """Learn ``batch`` into the model's home (``mailmoat.feedback.home_for``:
    the model file when ``classifier.model_path`` is set, else the store) and
    save it: (the saved model, messages that changed it); (None, 0) when none
    did and nothing was saved."""
    home = home_for(config, store)
    try:
        for _attempt in range(5):
            model = await home.load()
            changed = sum(model.learn(extract(msg, model.features), spam) for msg, spam in batch)
            if not changed:
                return None, 0
            try:
                await home.save(model, "autolearn", archive_min_age=AUTOLEARN_ARCHIVE_AGE)
            except ModelConflictError:
                continue
            return model, changed
    finally:
        await home.close()
    raise ModelConflictError("autolearn: too many concurrent saves")


def _in_thread(config: Config, batch: list[tuple[ParsedMessage, bool]]) -> tuple[Model | None, int]:
    async def with_own_store() -> tuple[Model | None, int]:
        own = open_store(config.store.url)
        try:
            return await learn_batch(config, own, batch)
        finally:
            await own.close()

    return asyncio.run(with_own_store())


def install(services: Services, count: Callable[[str], None] | None = None) -> AutoLearner | None:
    """A learner watching ``services``' pipeline verdicts; None when off."""
    if not services.config.classifier.autolearn or services.store is None:
        return None
    learner = AutoLearner(services, count)
    services.verdict_observers.append(learner.observe)
    return learner
