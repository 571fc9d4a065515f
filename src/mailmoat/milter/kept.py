"""Milter mode quarantine kept by mailmoat (``[milter] quarantine = "mailmoat"``).

Contract: ``keep(config, tx, decision)`` stores a message the milter judged
``quarantine`` in mailmoat's own quarantine (``[quarantine] directory``),
with the Received and X-Spam-* fields the SMTP front adds, the envelope, and
the MTA's queue id (``mta_queue_id``), fsynced before it returns True; the
milter then tells the MTA to discard its copy, so the message is held once,
shown on the dashboard and released on the same path as in SMTP mode
(``relay.upstream``: point it at an MTA listener without this milter, see
docs/postfix.md). False when it could not be stored (logged): the milter
then answers a temporary failure and the sending server retries, so nothing
is lost. With the default ``quarantine = "hold"`` the milter asks Postfix to
put the message in its hold queue instead (``postqueue -p``,
``postsuper -H``), and the dashboard does not show it.
"""

from __future__ import annotations

import logging

from mailmoat.config import Config
from mailmoat.core.scoring import Decision
from mailmoat.core.transaction import Transaction
from mailmoat.delivery.quarantine import Quarantine, envelope
from mailmoat.smtp.outcome import prepare

log = logging.getLogger("mailmoat.milter")


async def keep(config: Config, tx: Transaction, decision: Decision) -> bool:
    meta = {**envelope(tx), "mta_queue_id": tx.mta_queue_id}
    try:
        box = Quarantine(config.quarantine.directory, config.quarantine.retention_days)
        await box.put(prepare(tx, decision, config), meta)
    except OSError as exc:
        log.error("queue_id=%s quarantine failed: %s", tx.queue_id, exc)
        return False
    return True
