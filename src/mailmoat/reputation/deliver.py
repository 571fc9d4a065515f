"""Sending abuse reports: to whom, batched per contact, rate-limited.

Contract: ``address_reports(items, contacts, to)`` pairs each reportable
message with its contact: ``to`` when given, else the contact table's
address for the client's network or AS; a message with no contact is
skipped with the reason. ``send_reports`` delivers through the smarthost
with one SMTP session per contact and ``batch_size`` reports, at most
``max_per_minute`` reports a minute (it waits between them), and refuses
(``DeliveryRefused``) any recipient outside ``allowed`` (the table's
addresses and ``--to``): a report never goes anywhere else. A report the
smarthost refuses, or a smarthost that cannot be reached, is a failed line
in the result, not an exception.
"""

from __future__ import annotations

import smtplib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from mailmoat.config.loader import parse_hostport
from mailmoat.reputation.report import Reportable
from mailmoat.reputation.sources import Sources
from mailmoat.reputation.tables import ContactTable


class DeliveryRefused(RuntimeError):
    """A recipient outside the contact table and --to: a bug, never sent."""


@dataclass(frozen=True)
class Addressed:
    item: Reportable
    contact: str


def address_reports(
    items: Iterable[Reportable], contacts: ContactTable | None, to: str, sources: Sources
) -> tuple[list[Addressed], list[str]]:
    addressed: list[Addressed] = []
    skipped: list[str] = []
    for item in items:
        contact = to
        if not contact and contacts is not None:
            asn = next((s.name for s in sources.of(item.client_ip) if s.kind == "as"), None)
            contact = contacts.contact_for(item.client_ip, asn) or ""
        if contact:
            addressed.append(Addressed(item, contact))
        else:
            skipped.append(f"{item.queue_id}: no abuse contact for {item.client_ip}")
    return addressed, skipped


def send_reports(
    reports: list[tuple[str, str, bytes]],
    *,
    smarthost: str,
    sender: str,
    allowed: frozenset[str],
    batch_size: int,
    max_per_minute: int,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    timeout: float = 30.0,
) -> list[str]:
    """``reports``: (queue id, contact, message). One line per report."""
    for _, contact, _ in reports:
        if contact not in allowed:
            raise DeliveryRefused(f"{contact} is neither in the contact table nor --to")
    host, port = parse_hostport(smarthost)
    by_contact: dict[str, list[tuple[str, bytes]]] = {}
    for queue_id, contact, data in reports:
        by_contact.setdefault(contact, []).append((queue_id, data))
    gap = 60.0 / max_per_minute
    last = [float("-inf")]
    results: list[str] = []

    def pace() -> None:
        wait = last[0] + gap - clock()
        if wait > 0:
            sleep(wait)
        last[0] = clock()

    for contact, queued in by_contact.items():
        for start in range(0, len(queued), batch_size):
            batch = queued[start : start + batch_size]
            results += _send_batch(host, port, sender, contact, batch, pace, timeout)
    return results


def _send_batch(
    host: str,
    port: int,
    sender: str,
    contact: str,
    batch: list[tuple[str, bytes]],
    pace: Callable[[], None],
    timeout: float,
) -> list[str]:
    try:
        client = smtplib.SMTP(host, port, timeout=timeout)
    except OSError as exc:
        return [
            f"{queue_id}: not sent to {contact}: smarthost {host}:{port}: {exc}"
            for queue_id, _ in batch
        ]
    results = []
    try:
        client.ehlo_or_helo_if_needed()
        for queue_id, data in batch:
            pace()
            try:
                client.sendmail(sender, [contact], data)
                results.append(f"{queue_id}: sent to {contact}")
            except smtplib.SMTPException as exc:
                results.append(f"{queue_id}: not sent to {contact}: {exc}")
                client.rset()
    except (OSError, smtplib.SMTPException) as exc:
        done = {line.split(":", 1)[0] for line in results}
        results += [f"{q}: not sent to {contact}: {exc}" for q, _ in batch if q not in done]
    finally:
        try:
            client.quit()
        except (OSError, smtplib.SMTPException):
            client.close()
    return results
