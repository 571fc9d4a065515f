"""A store that could not be opened, standing in until it can be.

Contract: ``RecoveringStore(open_backend, reason)`` answers every operation
by trying to open the backend again (at most once per ``retry_seconds``);
until that succeeds each operation raises ``StoreError`` with the reason,
so the pipeline applies ``store.fail_mode`` (by default ``451``) and the
gateway keeps greeting and answering clients. A corrupted or unwritable
store file therefore costs a clear error in the log and temporary failures,
never a process that crash-loops behind a listening socket. Once open, every
operation goes to the backend (an error there is the backend's own).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from mailmoat.metrics import count_store_error
from mailmoat.store.base import Store, StoreError

log = logging.getLogger("mailmoat.store")


class RecoveringStore:
    def __init__(
        self,
        open_backend: Callable[[], Store],
        reason: str,
        *,
        retry_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._open_backend = open_backend
        self.reason = reason
        self.retry_seconds = retry_seconds
        self._clock = clock
        self._next_try = clock() + retry_seconds
        self._backend: Store | None = None

    @property
    def available(self) -> bool:
        return self._backend is not None

    def _current(self) -> Store:
        if self._backend is not None:
            return self._backend
        now = self._clock()
        if now >= self._next_try:
            self._next_try = now + self.retry_seconds
            try:
                self._backend = self._open_backend()
            except StoreError as exc:
                self.reason = str(exc)
            else:
                log.warning("store available again")
                return self._backend
        count_store_error("unavailable")
        raise StoreError(f"store unavailable: {self.reason}")

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)

        async def operation(*args: Any, **kwargs: Any) -> Any:
            return await getattr(self._current(), name)(*args, **kwargs)

        operation.__name__ = name
        return operation

    async def close(self) -> None:
        if self._backend is not None:
            await self._backend.close()
