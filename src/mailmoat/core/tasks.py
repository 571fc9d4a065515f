"""Small asyncio task helpers shared by background loops.

``FlushLoop`` is the lifecycle of a recorder that buffers in memory and
writes to the store in the background: ``start()`` runs ``flush()`` every
``flush_interval()`` seconds (a failing flush is logged to the subclass's
module logger and retried at the next tick), ``stop()`` ends the loop and
flushes a last time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancel ``task`` (if any) and wait until it has ended."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class FlushLoop:
    _task: asyncio.Task[None] | None = None

    def flush_interval(self) -> float:
        raise NotImplementedError

    async def flush(self) -> None:
        raise NotImplementedError

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop())

    async def _loop(self) -> None:
        log = logging.getLogger(type(self).__module__)
        while True:
            await asyncio.sleep(self.flush_interval())
            try:
                await self.flush()
            except Exception:
                log.exception("%s: flush failed", type(self).__name__)

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        await self.flush()
