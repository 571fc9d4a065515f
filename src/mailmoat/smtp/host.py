"""What an SMTP session may ask of the gateway that accepted it.

Contract: ``SessionHost`` is the whole interface between one client's
dialogue (the engine ``smtp/protocol.py`` and its handler
``smtp/screening.py``) and the process around it (``smtp/server.py``'s
``Gateway``): the running config and pipeline (read once, when the session
starts), the node name for records, whether the process is stopping, the
TLS context and XFORWARD networks, the upstream pool and the local delivery
targets, and the in-flight byte budget. Sessions touch nothing else of the
gateway.
"""

from __future__ import annotations

import ssl
from typing import Protocol

from mailmoat.checks.base import Services
from mailmoat.config import Config
from mailmoat.core.transaction import Transaction
from mailmoat.delivery.upstream import UpstreamSession
from mailmoat.pipeline import Pipeline
from mailmoat.smtp import xforward
from mailmoat.smtp.answers import Answer
from mailmoat.smtp.budget import ByteBudget


class SessionHost(Protocol):
    @property
    def config(self) -> Config: ...

    @property
    def pipeline(self) -> Pipeline: ...

    @property
    def services(self) -> Services: ...

    @property
    def node(self) -> str: ...

    stopping: bool
    tls_context: ssl.SSLContext | None
    xforward_networks: list[xforward.Network]
    upstream_address: tuple[str, int] | None
    inflight: ByteBudget

    def is_current(self, session: UpstreamSession) -> bool:
        """Whether ``session`` was opened under the running config."""
        ...

    async def take_upstream(self) -> tuple[UpstreamSession, bool]:
        """A pooled (True) or new (False) upstream connection; raises
        ``UpstreamError`` carrying the 451 to give."""
        ...

    async def release_upstream(self, session: UpstreamSession) -> None: ...

    async def deliver_local(self, tx: Transaction, message: bytes) -> Answer:
        """The Maildir; the reply for the client."""
        ...

    async def quarantine_message(self, tx: Transaction, message: bytes) -> Answer:
        """The quarantine; the reply for the client."""
        ...
