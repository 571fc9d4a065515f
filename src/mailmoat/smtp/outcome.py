"""After the verdict: the headers we add and where the message goes.

Contract: ``result_headers`` builds the Received and X-Spam-* fields for a
decided transaction; ``prepare`` turns the received bytes into what is
delivered (our fields first, incoming X-Spam-* fields and any fields the
checks asked to remove dropped, every other byte untouched).
"""

from __future__ import annotations

import functools
import time
from datetime import UTC, datetime
from email.utils import format_datetime

from mailmoat.config import Config
from mailmoat.core.headers import header_end
from mailmoat.core.scoring import Decision
from mailmoat.core.symbols import Action
from mailmoat.core.transaction import Transaction
from mailmoat.wire.content import edit_headers

SPAM_FIELDS = frozenset({"x-spam-flag", "x-spam-status", "x-spam-score", "x-spam-symbols"})


def _date_now() -> str:
    return _date_of(int(time.time()))


@functools.lru_cache(maxsize=4)
def _date_of(second: int) -> str:
    """RFC 5322 date of one second, local zone: formatted once a second."""
    return format_datetime(datetime.fromtimestamp(second, UTC).astimezone())


def received_field(tx: Transaction, hostname: str) -> tuple[str, str]:
    session = tx.session
    protocol = ("ESMTP" if session.esmtp else "SMTP") + ("S" if session.tls else "")
    if tx.session.front != "smtp":
        protocol = session.front.upper()
    rdns = session.client_rdns or "unknown"
    target = f" for <{tx.rcpts[0]}>" if len(tx.rcpts) == 1 else ""
    date = _date_now()
    value = (
        f"from {session.helo or 'unknown'} ({rdns} [{session.client_ip}]) "
        f"by {hostname} (mailmoat) with {protocol} id {tx.queue_id}{target}; {date}"
    )
    return "Received", value


def spam_fields(tx: Transaction, decision: Decision, config: Config) -> list[tuple[str, str]]:
    is_spam = decision.action in (Action.ADD_HEADER, Action.QUARANTINE, Action.REJECT)
    required = config.actions.add_header
    symbols = sorted(tx.all_symbols, key=lambda s: (-abs(s.score), s.name))
    listed = ", ".join(f"{s.name}({s.score:g})" for s in symbols) or "NONE"
    fields = [
        (
            "X-Spam-Status",
            f"{'Yes' if is_spam else 'No'}, score={decision.score:.2f} required={required:.2f}",
        ),
        ("X-Spam-Score", f"{decision.score:.2f}"),
        ("X-Spam-Symbols", listed),
    ]
    if is_spam:
        fields.insert(0, ("X-Spam-Flag", "YES"))
    return fields


def prepare(tx: Transaction, decision: Decision, config: Config) -> bytes:
    removed = {(n.lower(), v) for n, v in tx.removed_headers}

    def drop(name: str, value: str) -> bool:
        lower = name.lower()
        return lower in SPAM_FIELDS or (lower, value) in removed

    fields = [
        received_field(tx, config.smtp.hostname),
        *tx.added_headers,
        *spam_fields(tx, decision, config),
    ]
    data = tx.data
    if not removed and b"x-spam-" not in data[: header_end(data)].lower():
        # No field can be dropped (every name in SPAM_FIELDS holds
        # "x-spam-"): the fields are not split and compared one by one.
        return edit_headers(data, fields)
    return edit_headers(data, fields, drop)
