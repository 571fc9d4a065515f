"""What every SMTP dialogue has: its state, replies, records, cleanups.

Contract: ``Dialogue`` holds one client connection's state (session,
current transaction, upstream leg, error count) and the plumbing the command
handlers share: ``reply`` (counts 4xx/5xx toward the hard error limit),
``_record`` (one ``TransactionRecord`` per outcome, to the pipeline's
recorders), ``_refuse`` (a pipeline refusal as a reply plus a record),
``_violation`` (a protocol test's ignore/enforce/drop action) and the
end-of-transaction housekeeping. It owns no command.
"""

from __future__ import annotations

import logging

from mailmoat.checks.doors import FRONT_SPEC
from mailmoat.core.record import record_for
from mailmoat.core.replies import refusal_line
from mailmoat.core.scoring import Decision
from mailmoat.core.symbols import Action, Forced, Precedence, Stage
from mailmoat.core.transaction import Session, Transaction
from mailmoat.delivery.upstream import UpstreamSession
from mailmoat.smtp import xforward
from mailmoat.smtp.host import SessionHost
from mailmoat.store.base import StoreError
from mailmoat.wire.connection import Connection

log = logging.getLogger("mailmoat.smtp")


class Hangup(Exception):
    """Stop the dialogue after the reply already sent."""


class Dialogue:
    def __init__(self, gateway: SessionHost, conn: Connection) -> None:
        self.gw = gateway
        self.conn = conn
        self.config = gateway.config
        self.pipeline = gateway.pipeline
        self.session = Session(client_ip=conn.peer[0], client_port=conn.peer[1])
        self.tx: Transaction | None = None
        self.upstream: UpstreamSession | None = None
        self.errors = 0
        self.pipelining_offered = False
        self.in_data = False
        self.closing = False
        # The client heard why it is cut off at shutdown (451 in DATA).
        self.shutdown_told = False
        self.xforward_offered = xforward.is_trusted(conn.peer[0], gateway.xforward_networks)
        self.forwarded: dict[str, str] = {}

    @property
    def idle(self) -> bool:
        """Between transactions: nothing would be lost by hanging up now."""
        return self.tx is None and not self.in_data

    def hangup(self, line: str) -> None:
        self.reply(line)
        self.closing = True
        self.conn.close()

    def reply(self, line: str, *, counted: bool = True) -> None:
        """Send ``line``; a 4xx/5xx counts as an error unless not ``counted``."""
        if counted and line[:1] in "45":
            self.errors += 1
        self.conn.write(line.encode("utf-8", "replace") + b"\r\n")

    def _new_tx(self) -> Transaction:
        return Transaction(self.session)

    async def _record(
        self,
        tx: Transaction,
        decision: Decision | None,
        *,
        action: str,
        reason: str,
        stage: Stage,
        reply: str,
        rcpts: tuple[str, ...] | None = None,
    ) -> None:
        record = record_for(
            tx,
            decision,
            action=action,
            reason=reason,
            stage=stage,
            reply=reply,
            node=self.gw.node,
            rcpts=rcpts,
        )
        await self.pipeline.finish(record)

    async def _run_cleanups(self, session: Session) -> None:
        for cleanup in session.cleanups:
            try:
                await cleanup()
            except StoreError as exc:
                log.warning("client=%s cleanup failed: %s", session.client_ip, exc)
            except Exception:
                log.exception("client=%s cleanup failed", session.client_ip)
        session.cleanups.clear()

    async def _end_tx(self) -> None:
        """Forget the transaction; a forwarded client's session ends with it."""
        tx, self.tx = self.tx, None
        if tx is not None and tx.session is not self.session:
            await self._run_cleanups(tx.session)

    async def _close_upstream(self) -> None:
        """Hand the upstream connection back to the gateway's pool, which
        resets (or closes) it when a transaction is still open on it."""
        upstream, self.upstream = self.upstream, None
        if upstream is not None:
            await self.gw.release_upstream(upstream)

    async def _abort_tx(self) -> None:
        await self._end_tx()
        if self.upstream is not None:
            await self.upstream.rset()

    async def _refuse(self, tx: Transaction, decision: Decision, stage: Stage) -> None:
        line = refusal_line(decision, stage)
        if decision.code == 421:
            self.closing = True
        self.reply(line)
        await self._record(
            tx,
            decision,
            action=decision.action.value,
            reason=decision.reason,
            stage=stage,
            reply=line,
            rcpts=(tx.current_rcpt,) if tx.current_rcpt else (),
        )

    async def _violation(self, tx: Transaction, reason: str, action: str, symbol: str) -> bool:
        """Apply a protocol test's action; False when the client is dropped."""
        self.session.symbols.append(
            self.pipeline.rescored(symbol, FRONT_SPEC.score(symbol), reason)
        )
        if action == "ignore":
            return True
        if action == "drop":
            line = "521 5.5.1 Protocol error, goodbye"
            self.reply(line)
            await self._record(
                tx,
                None,
                action=Action.REJECT.value,
                reason=reason,
                stage=Stage.CONNECT,
                reply=line,
            )
            self.closing = True
            return False
        self.session.forced.append(
            Forced(Action.REJECT, Precedence.TEST, reason, 550, "5.5.1", "Protocol error")
        )
        return True
