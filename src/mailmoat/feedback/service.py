"""Feedback from a running process: learn off the event loop, count, publish.

Contract: ``learn_with_config(config, store, items)`` applies ``items``
((raw message, label) pairs) to the model's home (``home_for``) in a worker
thread with its own store connection (a private ``:memory:`` store is used
directly on the loop: it cannot be reopened), so the gateway keeps serving mail while a
model loads and saves. It counts every item by label
(``mailmoat.metrics.count_learn``: ``mailmoat_learn_total`` on ``/metrics``,
stored by the statistics recorder's next flush) and hands
the saved model to this process's classifier checks through ``holder`` (the
runtime's ``services.model``), so the next message is scored with it;
other processes pick it up with ``model_loaders`` (polled by
``mailmoat.cluster``). Errors of the home propagate (``FeedbackError``,
``ModelConflictError``, ``StoreError``, ``OSError``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from mailmoat.classify.holder import ModelHolder
from mailmoat.classify.model import Model
from mailmoat.classify.persist import load_file, load_from_store, stored_version
from mailmoat.config import Config
from mailmoat.feedback.home import file_version, home_for
from mailmoat.feedback.learning import FeedbackResult, apply_feedback
from mailmoat.metrics import count_learn
from mailmoat.store import open_store
from mailmoat.store.base import Store

log = logging.getLogger("mailmoat.feedback")

Loader = Callable[[Any], Awaitable[Any]]


async def learn_here(
    config: Config, store: Store | None, items: Sequence[tuple[bytes, str]], note: str
) -> FeedbackResult:
    home = home_for(config, store)
    try:
        return await apply_feedback(home, items, note=note)
    finally:
        await home.close()


async def learn_with_config(
    config: Config,
    store: Store | None,
    items: Sequence[tuple[bytes, str]],
    *,
    note: str = "feedback",
    holder: ModelHolder | None = None,
) -> FeedbackResult:
    """See the module doc."""
    file_mode = bool(config.classifier.model_path)
    if not file_mode and (store is None or ":memory:" in config.store.url):
        result = await learn_here(config, store, items, note)
    else:

        def in_thread() -> FeedbackResult:
            async def with_own_store() -> FeedbackResult:
                if file_mode:
                    return await learn_here(config, None, items, note)
                own = open_store(config.store.url)
                try:
                    return await learn_here(config, own, items, note)
                finally:
                    await own.close()

            return asyncio.run(with_own_store())

        result = await asyncio.to_thread(in_thread)
    for _raw, label in items:
        count_learn(label)
    if result.version is not None and holder is not None:
        holder.publish(result.model)
    log.info("feedback (%s): %s", note, result.summary())
    return result


def model_loaders(config: Config) -> tuple[Loader, Loader]:
    """(load, version) callables of a store, as ``mailmoat.cluster`` polls
    them: the store's model in store mode; in file mode the store argument
    is ignored and the file ``classifier.model_path`` is read instead."""
    path = config.classifier.model_path
    if not path:
        return load_from_store, stored_version

    async def load(_store: Any) -> Model | None:
        try:
            return await asyncio.to_thread(load_file, path)
        except FileNotFoundError:
            return None

    async def version(_store: Any) -> int | None:
        return file_version(path)

    return load, version
