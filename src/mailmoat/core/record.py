"""The transaction record: what the log, statistics and history see.

One ``TransactionRecord`` is emitted per finished transaction (delivered,
refused at any stage, or abandoned with a refusal) and per refused
connection. Recorders (the log line, statistics, history) receive it.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from mailmoat.core.headers import decoded
from mailmoat.core.scoring import Decision
from mailmoat.core.symbols import Stage, Symbol
from mailmoat.core.transaction import Transaction


@dataclass(frozen=True)
class TransactionRecord:
    queue_id: str
    client_ip: str
    client_rdns: str
    helo: str
    mail_from: str
    rcpts: tuple[str, ...]
    action: str
    # Counter name for refusals ("dnsbl", "greylist", "relay_denied", ...),
    # "score" for score-based actions, "delivered"/"relayed" otherwise.
    reason: str
    score: float
    symbols: tuple[Symbol, ...]
    size: int = 0
    subject: str = ""
    message_id: str = ""
    # Stage at which the outcome was decided.
    stage: str = "data"
    # SMTP reply given to the client for the outcome.
    reply: str = ""
    duration: float = 0.0
    front: str = "smtp"
    node: str = ""
    time: float = field(default_factory=time.time)
    # The MTA's own queue id (milter and policy fronts), "" when unknown.
    mta_queue_id: str = ""
    # Seconds from the end of DATA to the reply (checks and delivery); -1 without DATA.
    eod_seconds: float = -1.0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["rcpts"] = list(self.rcpts)
        data["symbols"] = {s.name: s.score for s in self.symbols}
        data["symbol_details"] = {s.name: s.detail for s in self.symbols if s.detail}
        return data

    def log_line(self) -> str:
        """The transaction's log line (format: ``mailmoat.logs``, docs/logging.md)."""
        from mailmoat.logs import transaction_line

        return transaction_line(self)


def record_for(
    tx: Transaction,
    decision: Decision | None,
    *,
    action: str,
    reason: str,
    stage: Stage,
    reply: str,
    node: str,
    rcpts: tuple[str, ...] | None = None,
) -> TransactionRecord:
    headers = tx.headers if tx.data else None
    session = tx.session
    eod_started = tx.eod_started
    return TransactionRecord(
        queue_id=tx.queue_id,
        client_ip=session.client_ip,
        client_rdns=session.client_rdns,
        helo=session.helo,
        mail_from=tx.mail_from,
        rcpts=tuple(tx.rcpts) if rcpts is None else rcpts,
        action=action,
        reason=reason,
        score=decision.score if decision else tx.score,
        symbols=tuple(tx.all_symbols),
        size=len(tx.data),
        subject=decoded(headers.get("Subject"))[:500] if headers else "",
        message_id=str(headers.get("Message-ID", ""))[:500] if headers else "",
        stage=stage.value,
        reply=reply,
        duration=time.time() - tx.started,
        front=session.front,
        node=node,
        mta_queue_id=tx.mta_queue_id,
        eod_seconds=time.monotonic() - eod_started if eod_started is not None else -1.0,
    )
