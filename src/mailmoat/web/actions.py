"""What the dashboard's buttons do: release, delete, learn.

Contract:
- ``release`` is ``mailmoat.delivery.release``: the gateway's own delivery
  path (the upstream client the SMTP front uses, or the Maildir); the
  message leaves the quarantine only once delivered. A refusal or an
  unreachable upstream raises ``ActionError`` and the message stays.
- ``learn`` feeds a message to the classifier (``mailmoat.classify``) as
  spam or ham when that package offers a learn API; otherwise it raises
  ``ActionError`` saying so. Nothing here touches the statistics counters
  except through the ``on_release`` callback.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
from typing import Any

from mailmoat.config import Config
from mailmoat.delivery.quarantine import Quarantine
from mailmoat.delivery.release import ReleaseError
from mailmoat.delivery.release import release as delivery_release
from mailmoat.store import open_store

log = logging.getLogger("mailmoat.web")


class ActionError(Exception):
    """A dashboard action that did not happen, with a message for the admin."""


def open_quarantine(config: Config) -> Quarantine:
    return Quarantine(config.quarantine.directory, config.quarantine.retention_days)


async def release(config: Config, quarantine: Quarantine, message_id: str) -> str:
    """``mailmoat.delivery.release.release``, its refusal as ``ActionError``."""
    try:
        return await delivery_release(config, quarantine, message_id)
    except ReleaseError as exc:
        raise ActionError(str(exc)) from exc


def delete(quarantine: Quarantine, message_id: str) -> None:
    if not quarantine.delete(message_id):
        raise ActionError(f"no quarantined message {message_id}")


async def learn(config: Config, store: Any, message: bytes, *, spam: bool) -> str:
    """Train the classifier; ``ActionError`` when there is none to train.

    Loading and saving a model takes seconds of CPU, so it runs in a worker
    thread with its own event loop and its own connection to the configured
    store: the gateway's loop keeps serving mail meanwhile."""
    function = _learn_api()
    if function is None:
        raise ActionError(
            "the classifier offers no learn API (mailmoat.classify.learn_message); "
            "nothing was learned"
        )

    async def run(target: Any) -> Any:
        result = function(config=config, store=target, message=message, is_spam=spam)
        return await result if inspect.isawaitable(result) else result

    def in_thread() -> Any:
        async def with_own_store() -> Any:
            own = open_store(config.store.url)
            try:
                return await run(own)
            finally:
                await own.close()

        return asyncio.run(with_own_store())

    try:
        if ":memory:" in config.store.url:
            result = await run(store)  # a private store cannot be reopened
        else:
            result = await asyncio.to_thread(in_thread)
    except Exception as exc:
        log.exception("learn failed")
        raise ActionError(f"learning failed: {type(exc).__name__}: {exc}") from exc
    label = "spam" if spam else "ham"
    return f"learned as {label}" + (f" ({result})" if isinstance(result, str) and result else "")


def _learn_api() -> Any:
    try:
        module = importlib.import_module("mailmoat.classify")
    except ImportError:
        return None
    return getattr(module, "learn_message", None)
