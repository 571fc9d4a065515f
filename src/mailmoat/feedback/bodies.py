"""Copies of delivered mail, kept a few days so the dashboard can learn them.

Contract: with ``[quarantine] keep_accepted_days`` above 0, ``install(services)``
registers a ``BodyKeeper`` as a verdict observer (``mailmoat.pipeline``):
every message accepted or tagged at end of DATA is queued (no I/O on the
transaction's path; past ``MAX_PENDING`` waiting messages new ones are not
kept) and written every ``FLUSH_SECONDS`` by a worker thread to
``<quarantine.directory>/accepted/<queue id>``: one private file (0600, in a
0700 directory, written to a temporary name then renamed) per message, the
bytes as received. Files older than the retention are removed hourly.
``kept_body(config, queue_id)`` reads one back (None when not kept, expired,
or the id is not a plain queue id). Quarantined mail is not copied: it is in
the quarantine already. Failure mode: a write that fails is logged and that
message is not kept; mail flow never waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import time
from pathlib import Path

from mailmoat.checks.base import Services
from mailmoat.config import Config
from mailmoat.core.scoring import Decision
from mailmoat.core.symbols import Action
from mailmoat.core.tasks import cancel_and_wait
from mailmoat.core.transaction import Transaction
from mailmoat.delivery.quarantine import make_private_dir

log = logging.getLogger("mailmoat.feedback")

FLUSH_SECONDS = 2.0
EXPIRE_SECONDS = 3600.0
MAX_PENDING = 10_000
KEPT_ACTIONS = (Action.ACCEPT, Action.ADD_HEADER)
_QUEUE_ID = re.compile(r"[A-Za-z0-9]{1,64}")


def bodies_dir(config: Config) -> Path:
    return Path(config.quarantine.directory) / "accepted"


def kept_body(config: Config, queue_id: str) -> bytes | None:
    if config.quarantine.keep_accepted_days <= 0 or not _QUEUE_ID.fullmatch(queue_id):
        return None
    try:
        return (bodies_dir(config) / queue_id).read_bytes()
    except OSError:
        return None


class BodyKeeper:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.pending: list[tuple[str, bytes]] = []
        self.dropped = 0
        self._task: asyncio.Task[None] | None = None
        self._last_expiry = 0.0

    def observe(self, services: Services, tx: Transaction, decision: Decision) -> None:
        if decision.action not in KEPT_ACTIONS or not tx.data:
            return
        if services.config.quarantine.keep_accepted_days <= 0:
            return
        if len(self.pending) >= MAX_PENDING or not _QUEUE_ID.fullmatch(tx.queue_id):
            self.dropped += 1
            return
        self.pending.append((tx.queue_id, bytes(tx.data)))

    async def flush(self) -> int:
        batch, self.pending = self.pending, []
        if self.dropped:
            log.warning("kept bodies: %d messages not kept (queue full)", self.dropped)
            self.dropped = 0
        config = self.services.config
        expire = time.monotonic() - self._last_expiry >= EXPIRE_SECONDS
        if expire:
            self._last_expiry = time.monotonic()
        if not batch and not expire:
            return 0
        return await asyncio.to_thread(_write_and_expire, config, batch, expire)

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            try:
                await self.flush()
            except Exception:
                log.exception("kept bodies: flush failed")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        await self.flush()


def _write_and_expire(config: Config, batch: list[tuple[str, bytes]], expire: bool) -> int:
    directory = bodies_dir(config)
    make_private_dir(directory)
    written = 0
    for queue_id, data in batch:
        tmp = directory / f".{queue_id}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with open(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, directory / queue_id)
            written += 1
        except OSError as exc:
            log.error("queue_id=%s body not kept: %s", queue_id, exc)
    if expire:
        cutoff = time.time() - config.quarantine.keep_accepted_days * 86_400
        for path in directory.iterdir():
            with contextlib.suppress(OSError):
                if path.stat().st_mtime < cutoff:
                    path.unlink()
    return written


def install(services: Services) -> BodyKeeper | None:
    """The keeper for ``services`` (None when ``keep_accepted_days`` is 0),
    observing end-of-DATA verdicts; the runtime starts and stops it."""
    if services.config.quarantine.keep_accepted_days <= 0:
        return None
    keeper = BodyKeeper(services)
    services.verdict_observers.append(keeper.observe)
    return keeper
