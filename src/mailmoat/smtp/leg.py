"""The upstream leg of one client connection (before-queue delivery).

Contract: ``UpstreamLeg`` holds at most one upstream connection for one
client connection. ``rcpt(tx, rcpt)`` sends MAIL FROM with the first
recipient (one round trip with XFORWARD when offered) or the next
recipient in lockstep, and gives back the upstream's reply; anything that
is no upstream reply (refused connection, timeout, lost connection) is the
``451`` of ``UpstreamError`` as a value, never an exception. ``data``
sends the message and gives the final reply; ``rset`` aborts the upstream
transaction; ``release`` hands the connection back to the gateway's pool
(which resets or closes it). A pooled connection the upstream closed
meanwhile is replaced once, so it never costs the client a 451.
"""

from __future__ import annotations

import logging

from mailmoat.core.transaction import Transaction
from mailmoat.delivery.upstream import ClientFacts, Reply, UpstreamError, UpstreamSession
from mailmoat.smtp.host import SessionHost

log = logging.getLogger("mailmoat.smtp")


class UpstreamLeg:
    def __init__(self, host: SessionHost) -> None:
        self.host = host
        self.session: UpstreamSession | None = None
        # The upstream accepted MAIL FROM for the transaction in progress.
        self.in_mail = False

    @property
    def open(self) -> bool:
        return self.session is not None

    async def rcpt(self, tx: Transaction, rcpt: str) -> Reply:
        try:
            if self.in_mail:
                assert self.session is not None
                return await self.session.rcpt(rcpt)
            mail, first = await self._begin(tx, rcpt)
            if not mail.ok or first is None:
                return mail
            self.in_mail = True
            return first
        except UpstreamError as exc:
            log.warning("queue_id=%s upstream: %s", tx.queue_id, exc.detail)
            self.in_mail = False
            self._drop()
            return exc.reply

    async def _begin(self, tx: Transaction, rcpt: str) -> tuple[Reply, Reply | None]:
        facts = ClientFacts(tx.session.client_ip, tx.session.client_rdns, tx.session.helo)
        while True:
            pooled = False
            if self.session is not None and not self.host.is_current(self.session):
                await self.release()  # opened before a reload
            if self.session is not None and not await self.session.settle():
                self.session = None
            if self.session is None:
                self.session, pooled = await self.host.take_upstream()
            try:
                return await self.session.begin(tx.mail_from, tx.mail_options, facts, rcpt)
            except UpstreamError:
                self._drop()
                if not pooled:
                    raise

    async def data(self, tx: Transaction, message: bytes) -> Reply | None:
        """The upstream's final reply; None when no upstream is open."""
        if self.session is None:
            return None
        try:
            return await self.session.data(message)
        except UpstreamError as exc:
            log.warning("queue_id=%s upstream: %s", tx.queue_id, exc.detail)
            self._drop()
            return exc.reply

    async def rset(self) -> None:
        self.in_mail = False
        if self.session is not None:
            await self.session.rset()

    def end(self) -> None:
        """The transaction is over (the upstream's own state follows)."""
        self.in_mail = False

    async def release(self) -> None:
        session, self.session = self.session, None
        if session is not None:
            await self.host.release_upstream(session)

    def _drop(self) -> None:
        if self.session is not None:
            self.session.close()
            self.session = None
