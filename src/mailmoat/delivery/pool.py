"""Upstream connections kept open between clients (as Postfix's SMTP
connection cache does): saves a TCP handshake, banner and EHLO per client.

Contract: ``take()`` returns an idle pooled ``UpstreamSession`` (and True)
or a freshly opened one (and False); it raises ``UpstreamError`` (with the
451 to give) when no connection can be opened. ``give_back(session)`` keeps
a healthy idle connection for the next client (at most ``size``, for
``idle_seconds``) and quits the rest; a connection still inside a
transaction is reset first, or closed when that fails: the pool never holds
one in an unknown state. ``renew(config)`` (a reload) bumps the generation:
connections opened under an older config never start a new transaction;
idle ones are closed at once (in the background), busy ones when given
back. ``close()`` quits every idle connection and refuses to keep more.
"""

from __future__ import annotations

import asyncio
import time

from mailmoat.config import Config
from mailmoat.delivery.upstream import UpstreamSession, upstream_from_config

POOL_SIZE = 64
IDLE_SECONDS = 5.0


class UpstreamPool:
    def __init__(
        self, config: Config, *, size: int = POOL_SIZE, idle_seconds: float = IDLE_SECONDS
    ) -> None:
        self.config = config
        self.size = size
        self.idle_seconds = idle_seconds
        # Idle connections, with when each became idle.
        self.idle: list[tuple[UpstreamSession, float]] = []
        # Bumped by each reload (``UpstreamSession.generation``).
        self.generation = 0
        self.closed = False
        self._background: set[asyncio.Task[None]] = set()

    def is_current(self, session: UpstreamSession) -> bool:
        """Whether ``session`` was opened under the running config."""
        return session.generation == self.generation

    async def take(self) -> tuple[UpstreamSession, bool]:
        now = time.monotonic()
        while self.idle:
            session, since = self.idle.pop()
            if session.reusable and now - since < self.idle_seconds and self.is_current(session):
                return session, True
            session.close()
        session = upstream_from_config(self.config)
        session.generation = self.generation
        await session.open()
        return session, False

    async def give_back(self, session: UpstreamSession) -> None:
        full = len(self.idle) >= self.size
        if self.closed or full or not self.is_current(session):
            await session.quit()
            return
        if await session.settle():
            self.idle.append((session, time.monotonic()))
            return
        await session.quit()

    def renew(self, config: Config) -> None:
        """Use ``config`` for new connections; say QUIT on every idle one
        (in the background: a signal handler cannot wait)."""
        self.config = config
        self.generation += 1
        idle, self.idle = self.idle, []
        for session, _since in idle:
            task = asyncio.get_running_loop().create_task(session.quit())
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    def stop_keeping(self) -> None:
        """Connections given back from now on are quit, not kept."""
        self.closed = True

    async def close(self) -> None:
        self.closed = True
        while self.idle:
            session, _since = self.idle.pop()
            await session.quit()
