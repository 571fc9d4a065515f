"""The gateway process: listener, sessions, delivery targets, signals.

Contract: ``Gateway.start()`` listens on ``smtp.listen`` and runs one
``SmtpProtocol`` engine with its ``Screening`` handler per connection (over
``smtp.max_connections``: ``421`` and close). ``stop()`` (SIGTERM) closes
the listener, tells idle sessions ``421``, lets transactions in flight
finish for ``smtp.shutdown_grace`` seconds and then cancels them (``451``
to a client in DATA). ``reload()`` (SIGHUP) reads the config file again and
builds a whole new runtime (``Runtime.prepare``: services and pipeline; TLS
context, delivery targets) before swapping it in: any failure (broken file,
unreadable certificate, bad list) is logged as one error line and the old
runtime stays entirely. Sessions already open keep the pipeline they
started with, new ones get the new one. Upstream connections opened under
the old config are never used for a new transaction: idle ones are closed
at once, busy ones when released.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from mailmoat.checks.base import Services
from mailmoat.config import Config, load_config, parse_hostport
from mailmoat.core.errors import describe
from mailmoat.core.transaction import Session, Transaction
from mailmoat.delivery.maildir import MaildirWriter
from mailmoat.delivery.pool import UpstreamPool
from mailmoat.delivery.quarantine import Quarantine, envelope
from mailmoat.delivery.upstream import UpstreamSession
from mailmoat.pipeline import Pipeline
from mailmoat.smtp import answers, xforward
from mailmoat.smtp.answers import Answer
from mailmoat.smtp.budget import ByteBudget
from mailmoat.smtp.protocol import SmtpProtocol
from mailmoat.smtp.screening import Screening
from mailmoat.stats.recorder import StatsRecorder
from mailmoat.wire.connection import Connection

log = logging.getLogger("mailmoat.server")


class GatewayRuntime(Protocol):
    """What the gateway needs of ``mailmoat.runtime.Runtime``."""

    config: Config
    services: Services
    pipeline: Pipeline
    config_path: str | None
    recorder: StatsRecorder | None

    @property
    def node(self) -> str: ...

    def prepare(self, config: Config) -> tuple[Services, Pipeline]: ...

    def apply(self, config: Config, built: tuple[Services, Pipeline]) -> None: ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class DeliveryTargets:
    """What a config decides beyond the pipeline, built in one go."""

    xforward_networks: list[xforward.Network]
    upstream_address: tuple[str, int] | None
    maildir: MaildirWriter
    quarantine: Quarantine
    tls_context: ssl.SSLContext | None

    @classmethod
    def build(cls, config: Config) -> DeliveryTargets:
        """Raises ConfigError, OSError (ssl.SSLError) or ValueError."""
        tls_context: ssl.SSLContext | None = None
        if config.smtp.tls_cert:
            tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            tls_context.load_cert_chain(config.smtp.tls_cert, config.smtp.tls_key)
        return cls(
            xforward.trusted_networks(config.smtp.xforward_hosts),
            parse_hostport(config.relay.upstream) if config.relay.upstream else None,
            MaildirWriter(config.delivery.maildir),
            Quarantine(config.quarantine.directory, config.quarantine.retention_days),
            tls_context,
        )


class Gateway:
    def __init__(self, runtime: GatewayRuntime) -> None:
        self.runtime = runtime
        self.sessions: dict[asyncio.Task[None], SmtpProtocol] = {}
        self.stopping = False
        # Called for every accepted connection, before any check (statistics).
        self.connection_observers: list[Callable[[], None]] = []
        if runtime.recorder is not None:
            self.connection_observers.append(runtime.recorder.count_connection)
        # Upstream connections kept between clients; renewed by each reload.
        self.upstreams = UpstreamPool(runtime.config)
        # Message bytes held by this worker's transactions in flight.
        self.inflight = ByteBudget(runtime.config.smtp.max_inflight_bytes)
        self._server: asyncio.Server | None = None
        self._apply(DeliveryTargets.build(runtime.config))

    @property
    def config(self) -> Config:
        return self.runtime.config

    @property
    def services(self) -> Services:
        return self.runtime.services

    @property
    def pipeline(self) -> Pipeline:
        """The pipeline new sessions get (open ones keep theirs)."""
        return self.runtime.pipeline

    @property
    def node(self) -> str:
        return self.runtime.node

    def _apply(self, targets: DeliveryTargets) -> None:
        self.xforward_networks = targets.xforward_networks
        self.upstream_address = targets.upstream_address
        self.maildir = targets.maildir
        self.quarantine = targets.quarantine
        self.tls_context = targets.tls_context
        self.inflight.limit = self.config.smtp.max_inflight_bytes

    # -- lifecycle ----------------------------------------------------------

    async def start(self, sock: socket.socket | None = None) -> tuple[str, int]:
        """Listen on ``smtp.listen``, or accept on ``sock`` (a prefork worker)."""
        loop = asyncio.get_running_loop()
        if sock is not None:
            self._server = await loop.create_server(
                lambda: Connection(self._on_connection), sock=sock, backlog=4096
            )
        else:
            host, port = parse_hostport(self.config.smtp.listen)
            self._server = await loop.create_server(
                lambda: Connection(self._on_connection),
                host,
                port,
                reuse_address=True,
                backlog=4096,
            )
        bound = self._server.sockets[0].getsockname()
        log.info("listening on %s:%s", bound[0], bound[1])
        return str(bound[0]), int(bound[1])

    def _on_connection(self, conn: Connection) -> None:
        for observe in self.connection_observers:
            observe()
        if self.stopping or len(self.sessions) >= self.config.smtp.max_connections:
            conn.write(answers.TOO_MANY_CONNECTIONS.wire)
            conn.close()
            return
        session = Session(client_ip=conn.peer[0], client_port=conn.peer[1])
        engine = SmtpProtocol(self, conn, session, Screening(self, session))
        task = asyncio.get_running_loop().create_task(engine.run())
        self.sessions[task] = engine
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[None]) -> None:
        self.sessions.pop(task, None)

    async def stop(self) -> None:
        self.stopping = True
        self.upstreams.stop_keeping()
        if self._server is not None:
            self._server.close()
        # Clients between transactions hear 421 now; those inside one may
        # finish it (the next command gets 421) until the grace time is up.
        for session in list(self.sessions.values()):
            if session.idle:
                session.hangup(answers.SHUTTING_DOWN)
        if self.sessions:
            log.info("stopping: waiting for %d sessions", len(self.sessions))
            _done, pending = await asyncio.wait(
                set(self.sessions), timeout=self.config.smtp.shutdown_grace
            )
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=5)
        await self.upstreams.close()
        if self._server is not None:
            await self._server.wait_closed()

    def reload(self) -> None:
        """Build a complete new runtime from the config file, then swap it
        in; on any failure keep the old one entirely (one error line)."""
        path = self.runtime.config_path
        if path is None:
            log.info("reload: no config file, keeping embedded defaults")
            return
        try:
            config = load_config(path)
            targets = DeliveryTargets.build(config)
            built = self.runtime.prepare(config)
        except Exception as exc:  # any failure keeps the old runtime
            log.error("reload failed, keeping the running config: %s", describe(exc))
            return
        self.runtime.apply(config, built)
        self._apply(targets)
        self.upstreams.renew(config)
        log.info("reloaded config from %s", path)

    def is_current(self, session: UpstreamSession) -> bool:
        """Whether ``session`` was opened under the running config."""
        return self.upstreams.is_current(session)

    # -- delivery targets ---------------------------------------------------

    async def take_upstream(self) -> tuple[UpstreamSession, bool]:
        """``UpstreamPool.take``: raises UpstreamError (with the 451 to give)."""
        return await self.upstreams.take()

    async def release_upstream(self, session: UpstreamSession) -> None:
        await self.upstreams.give_back(session)

    async def deliver_local(self, tx: Transaction, message: bytes) -> Answer:
        try:
            await self.maildir.deliver(message)
        except OSError as exc:
            log.error("queue_id=%s maildir delivery failed: %s", tx.queue_id, exc)
            return answers.LOCAL_DELIVERY_FAILED
        return answers.queued(tx.queue_id)

    async def quarantine_message(self, tx: Transaction, message: bytes) -> Answer:
        try:
            await self.quarantine.put(message, envelope(tx))
        except OSError as exc:
            log.error("queue_id=%s quarantine failed: %s", tx.queue_id, exc)
            return answers.LOCAL_STORAGE_FAILED
        return answers.queued(tx.queue_id)
