"""RFC 5965 abuse reports (ARF) of quarantined and refused messages.

Contract: ``find_reportable(config, store, queue_id)`` gathers what the
gateway kept of one transaction: its history entry (``stats.history``) and,
when it was quarantined, the message itself. Only quarantined messages and
messages refused on their content or source are reportable; anything else,
an unknown queue id, or a client in our own or allow-listed networks raises
``NotReportable`` with the reason. ``build_report`` makes the report: a
``multipart/report; report-type=feedback-report`` message whose parts are a
human-readable text, the ``message/feedback-report`` fields (Feedback-Type:
abuse, User-Agent, Version: 1, Source-IP, Original-Mail-From, one
Original-Rcpt-To per recipient, Arrival-Date, Reporting-MTA, Reported-Domain)
and the original message (``message/rfc822``) or, when its body was not kept
(a refused message), the header fields we know (``text/rfc822-headers``).
Pure apart from the reads; bytes with CRLF line ends.
"""

from __future__ import annotations

import email.utils
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from typing import Any

from mailmoat import __version__
from mailmoat.config import Config
from mailmoat.delivery.quarantine import Quarantine
from mailmoat.reputation.counts import NOT_EVIDENCE
from mailmoat.reputation.sources import protected_networks
from mailmoat.stats.history import find
from mailmoat.store.base import Store

USER_AGENT = f"mailmoat/{__version__}"


class NotReportable(ValueError):
    """This queue id cannot be reported; the message says why."""


@dataclass(frozen=True)
class Reportable:
    queue_id: str
    client_ip: str
    client_rdns: str
    helo: str
    mail_from: str
    rcpts: tuple[str, ...]
    subject: str
    message_id: str
    action: str
    reason: str
    time: float
    # The original message when the quarantine still holds it.
    message: bytes | None = None


def reportable_entry(entry: dict[str, Any]) -> bool:
    """A quarantined message, or one refused on its content or source."""
    action = entry.get("action")
    return action == "quarantine" or (
        action == "reject" and entry.get("reason", "") not in NOT_EVIDENCE
    )


async def find_reportable(
    config: Config, store: Store, queue_id: str, now: float | None = None
) -> Reportable:
    now = time.time() if now is None else now
    start = now - config.stats.history_days * 86_400
    entries = await find(store, queue_id, start=start, end=now + 60)
    chosen = next((e for e in entries if reportable_entry(e)), None)
    if chosen is None:
        if entries:
            raise NotReportable(f"{queue_id}: neither quarantined nor refused on its content")
        raise NotReportable(
            f"{queue_id}: not in the history (kept {config.stats.history_days} days)"
        )
    ip = str(chosen.get("client_ip", ""))
    protected = protected_networks(
        (*config.reputation.own_networks, *config.zone.allow),
        config.lists.allow,
        config.lists.allow_files,
    )
    if ip in protected:
        raise NotReportable(f"{queue_id}: {ip} is one of our own or allow-listed networks")
    message = None
    if chosen.get("action") == "quarantine":
        message = _quarantined_message(config, queue_id)
    return Reportable(
        queue_id=queue_id,
        client_ip=ip,
        client_rdns=str(chosen.get("client_rdns", "")),
        helo=str(chosen.get("helo", "")),
        mail_from=str(chosen.get("mail_from", "")),
        rcpts=tuple(str(r) for r in chosen.get("rcpts", ())),
        subject=str(chosen.get("subject", "")),
        message_id=str(chosen.get("message_id", "")),
        action=str(chosen.get("action")),
        reason=str(chosen.get("reason", "")),
        time=float(chosen.get("time", now)),
        message=message,
    )


def _quarantined_message(config: Config, queue_id: str) -> bytes | None:
    try:
        quarantine = Quarantine(config.quarantine.directory, config.quarantine.retention_days)
    except OSError:
        return None
    for item in quarantine.list():
        if item.queue_id == queue_id:
            found = quarantine.get(item.id)
            if found is not None:
                return found[1]
    return None


def reported_domains(item: Reportable) -> list[str]:
    """The envelope sender's domain and the From header's, lower case, once each."""
    domains: list[str] = []
    candidates = [item.mail_from]
    if item.message is not None:
        headers = BytesHeaderParser().parsebytes(item.message[:65_536])
        candidates += [
            address for _, address in email.utils.getaddresses(headers.get_all("From", []))
        ]
    for address in candidates:
        domain = address.rpartition("@")[2].strip().strip(">").lower() if "@" in address else ""
        if domain and _safe(domain) and domain not in domains:
            domains.append(domain)
    return domains


def _safe(value: str) -> bool:
    """No line breaks or controls: a field value cannot inject fields."""
    return all(c.isprintable() for c in value)


def _clean(value: str) -> str:
    return "".join(c if c.isprintable() else "?" for c in value)


def _arrival(when: float) -> str:
    return email.utils.format_datetime(datetime.fromtimestamp(when, UTC))


def feedback_fields(item: Reportable, reporting_mta: str) -> list[tuple[str, str]]:
    fields = [
        ("Feedback-Type", "abuse"),
        ("User-Agent", USER_AGENT),
        ("Version", "1"),
        ("Original-Mail-From", f"<{_clean(item.mail_from)}>"),
        *(("Original-Rcpt-To", f"<{_clean(r)}>") for r in item.rcpts),
        ("Arrival-Date", _arrival(item.time)),
        ("Reporting-MTA", f"dns; {_clean(reporting_mta)}"),
        ("Source-IP", _clean(item.client_ip)),
        ("Incidents", "1"),
    ]
    fields += [("Reported-Domain", domain) for domain in reported_domains(item)]
    return fields


def _known_headers(item: Reportable, hostname: str) -> str:
    rdns = _clean(item.client_rdns) or "unknown"
    lines = [
        f"Received: from {_clean(item.helo) or 'unknown'} ({rdns} [{_clean(item.client_ip)}])",
        f"\tby {_clean(hostname)} (mailmoat) with ESMTP id {_clean(item.queue_id)};",
        f"\t{_arrival(item.time)}",
        f"Return-Path: <{_clean(item.mail_from)}>",
    ]
    if item.subject:
        lines.append(f"Subject: {_clean(item.subject)}")
    if item.message_id:
        lines.append(f"Message-ID: {_clean(item.message_id)}")
    return "\r\n".join(lines) + "\r\n"


def build_report(
    item: Reportable, *, sender: str, to: str, hostname: str, now: float | None = None
) -> bytes:
    """The whole report message, ready to send or write as .eml."""
    now = time.time() if now is None else now
    boundary = f"=_mailmoat_arf_{secrets.token_hex(12)}"
    kept = item.message is not None
    verdict = "quarantined" if item.action == "quarantine" else f"refused ({item.reason})"
    human = (
        f"This is an abuse report (RFC 5965) for a message received from "
        f"{_clean(item.client_ip)} on {_arrival(item.time)}.\r\n"
        f"Our gateway {_clean(hostname)} {verdict} it as spam"
        f" (queue id {_clean(item.queue_id)}).\r\n"
        + (
            "The original message is attached.\r\n"
            if kept
            else "Its body was not kept: the header fields we know are attached.\r\n"
        )
    )
    fields = "".join(f"{name}: {value}\r\n" for name, value in feedback_fields(item, hostname))
    if kept:
        assert item.message is not None
        original = item.message.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        third = b"Content-Type: message/rfc822\r\nContent-Disposition: inline\r\n\r\n" + original
    else:
        third = (
            b"Content-Type: text/rfc822-headers; charset=utf-8\r\n"
            b"Content-Transfer-Encoding: 8bit\r\n\r\n"
            + _known_headers(item, hostname).encode("utf-8", "replace")
        )
    head = (
        f"From: <{sender}>\r\n"
        f"To: <{to}>\r\n"
        f"Subject: Abuse report: spam from {_clean(item.client_ip)}\r\n"
        f"Date: {email.utils.formatdate(now, usegmt=True)}\r\n"
        f"Message-ID: <arf.{_clean(item.queue_id)}.{secrets.token_hex(6)}@{_clean(hostname)}>\r\n"
        "Auto-Submitted: auto-generated\r\n"
        "MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=feedback-report; boundary="{boundary}"\r\n'
        "\r\n"
        "This is a multi-part message in MIME format.\r\n"
    )
    parts = [
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        + human,
        f"Content-Type: message/feedback-report\r\n\r\n{fields}",
    ]
    body = b"".join(f"--{boundary}\r\n{part}\r\n".encode("utf-8", "replace") for part in parts)
    body += f"--{boundary}\r\n".encode() + third + f"\r\n--{boundary}--\r\n".encode()
    return head.encode("utf-8", "replace") + body
