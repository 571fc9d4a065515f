"""One call that reports queue ids end to end (the dashboard's "report").

Contract: ``report_queue_ids(config, store, queue_ids)`` finds each
message (``report.find_reportable``), addresses it from the contact table
(never anywhere else), builds its RFC 5965 report and sends it through
``reports.smarthost``, batched and paced (``deliver.send_reports``, run in a
worker thread). It refuses with ``ReportsOff`` unless ``[reports] enabled``
and a smarthost and a contact table are configured. Returns one line per
queue id (sent, not sent, not reported and why); never raises for one
message.
"""

from __future__ import annotations

import asyncio

from mailmoat.config import Config
from mailmoat.reputation.deliver import address_reports, send_reports
from mailmoat.reputation.recorder import sources_from_config
from mailmoat.reputation.report import NotReportable, build_report, find_reportable
from mailmoat.reputation.tables import ContactTable
from mailmoat.store.base import Store


class ReportsOff(RuntimeError):
    """Sending reports is not configured; the message says what is missing."""


async def report_queue_ids(config: Config, store: Store, queue_ids: list[str]) -> list[str]:
    settings = config.reports
    if not settings.enabled:
        raise ReportsOff("abuse reports are off ([reports] enabled = false)")
    if not settings.smarthost or not settings.contacts:
        raise ReportsOff("abuse reports need reports.smarthost and reports.contacts")
    contacts = ContactTable.load(settings.contacts)
    lines: list[str] = []
    items = []
    for queue_id in queue_ids:
        try:
            items.append(await find_reportable(config, store, queue_id))
        except NotReportable as exc:
            lines.append(f"not reported: {exc}")
    addressed, skipped = address_reports(items, contacts, "", sources_from_config(config))
    lines += [f"not reported: {line}" for line in skipped]
    built = [
        (
            a.item.queue_id,
            a.contact,
            build_report(
                a.item, sender=settings.sender, to=a.contact, hostname=config.smtp.hostname
            ),
        )
        for a in addressed
    ]
    if built:
        lines += await asyncio.to_thread(
            send_reports,
            built,
            smarthost=settings.smarthost,
            sender=settings.sender,
            allowed=contacts.addresses,
            batch_size=settings.batch_size,
            max_per_minute=settings.max_per_minute,
        )
    return lines
