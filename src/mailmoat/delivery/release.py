"""Releasing a quarantined message: delivered on the gateway's own path.

Contract: ``release(config, quarantine, message_id)`` delivers the message
upstream when ``relay.upstream`` is set (the SMTP front's client and
sequence: ``UpstreamSession.begin`` with XFORWARD, MAIL and the first RCPT,
then each further RCPT and DATA) or else into the Maildir (fsynced), and
removes it from the quarantine only after the delivery was accepted. It
returns one line saying where the message went. A missing message, a
refusal (sender, every recipient, or the message) or an unreachable
upstream raises ``ReleaseError`` and the message stays quarantined.
"""

from __future__ import annotations

import logging

from mailmoat.config import Config
from mailmoat.delivery.maildir import MaildirWriter
from mailmoat.delivery.quarantine import Quarantine
from mailmoat.delivery.upstream import ClientFacts, UpstreamError, upstream_from_config

log = logging.getLogger("mailmoat.quarantine")


class ReleaseError(Exception):
    """A release that did not happen, with a message for the admin."""


async def release(config: Config, quarantine: Quarantine, message_id: str) -> str:
    found = quarantine.get(message_id)
    if found is None:
        raise ReleaseError(f"no quarantined message {message_id}")
    meta, message = found
    if config.relay.upstream:
        client = ClientFacts(meta.client_ip or "127.0.0.1", "", config.smtp.hostname)
        where = await relay(config, client, meta.mail_from, meta.rcpts, message)
    else:
        try:
            await MaildirWriter(config.delivery.maildir).deliver(message)
        except OSError as exc:
            raise ReleaseError(f"Maildir delivery failed: {exc}") from exc
        where = f"delivered to the Maildir {config.delivery.maildir}"
    quarantine.delete(message_id)
    log.info("quarantine: released %s (queue_id=%s): %s", message_id, meta.queue_id, where)
    return where


async def relay(
    config: Config, client: ClientFacts, sender: str, rcpts: list[str], message: bytes
) -> str:
    """One transaction to ``relay.upstream`` on a connection of its own."""
    if not rcpts:
        raise ReleaseError("the message has no recipient")
    upstream = upstream_from_config(config)
    try:
        await upstream.open()
        mail, first = await upstream.begin(sender, [f"SIZE={len(message)}"], client, rcpts[0])
        if not mail.ok:
            raise ReleaseError(f"upstream refused the sender: {mail.code} {mail.text}")
        accepted = [rcpts[0]] if first is not None and first.ok else []
        for rcpt in rcpts[1:]:
            if (await upstream.rcpt(rcpt)).ok:
                accepted.append(rcpt)
        if not accepted:
            raise ReleaseError("upstream refused every recipient")
        reply = await upstream.data(message)
        if not reply.ok:
            raise ReleaseError(f"upstream refused the message: {reply.code} {reply.text}")
    except UpstreamError as exc:
        raise ReleaseError(f"upstream: {exc.detail}") from exc
    finally:
        await upstream.quit()
    return f"relayed to {config.relay.upstream} for {len(accepted)} of {len(rcpts)} recipients"
