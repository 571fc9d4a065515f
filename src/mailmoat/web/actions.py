"""What the dashboard's buttons do: release, delete, learn.

Contract:
- ``release`` delivers a quarantined message on the gateway's own path (the
  upstream, before-queue style, when ``relay.upstream`` is set: MAIL, every
  RCPT, DATA through ``UpstreamSession``; else the Maildir, fsynced) and
  removes it from the quarantine only after the delivery was accepted. A
  refusal or an unreachable upstream raises ``ActionError`` and the message
  stays quarantined.
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
from mailmoat.delivery.maildir import MaildirWriter
from mailmoat.delivery.quarantine import Quarantine
from mailmoat.delivery.upstream import ClientFacts, UpstreamError, upstream_from_config
from mailmoat.store import open_store

log = logging.getLogger("mailmoat.web")


class ActionError(Exception):
    """A dashboard action that did not happen, with a message for the admin."""


def open_quarantine(config: Config) -> Quarantine:
    return Quarantine(config.quarantine.directory, config.quarantine.retention_days)


async def release(config: Config, quarantine: Quarantine, message_id: str) -> str:
    found = quarantine.get(message_id)
    if found is None:
        raise ActionError(f"no quarantined message {message_id}")
    meta, message = found
    if config.relay.upstream:
        where = await _release_upstream(config, meta.client_ip, meta.mail_from, meta.rcpts, message)
    else:
        try:
            await MaildirWriter(config.delivery.maildir).deliver(message)
        except OSError as exc:
            raise ActionError(f"Maildir delivery failed: {exc}") from exc
        where = f"delivered to the Maildir {config.delivery.maildir}"
    quarantine.delete(message_id)
    log.info("quarantine: released %s (queue_id=%s): %s", message_id, meta.queue_id, where)
    return where


async def _release_upstream(
    config: Config, client_ip: str, sender: str, rcpts: list[str], message: bytes
) -> str:
    upstream = upstream_from_config(config)
    client = ClientFacts(client_ip or "127.0.0.1", "", config.smtp.hostname)
    try:
        await upstream.open()
        reply = await upstream.mail(sender, [f"SIZE={len(message)}"], client)
        if not reply.ok:
            raise ActionError(f"upstream refused the sender: {reply.code} {reply.text}")
        accepted = []
        for rcpt in rcpts:
            if (await upstream.rcpt(rcpt)).ok:
                accepted.append(rcpt)
        if not accepted:
            raise ActionError("upstream refused every recipient")
        reply = await upstream.data(message)
        if not reply.ok:
            raise ActionError(f"upstream refused the message: {reply.code} {reply.text}")
    except UpstreamError as exc:
        raise ActionError(f"upstream: {exc.detail}") from exc
    finally:
        await upstream.quit()
    return f"relayed to {config.relay.upstream} for {len(accepted)} of {len(rcpts)} recipients"


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
