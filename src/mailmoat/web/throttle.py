"""Password checks that neither stall the event loop nor invite guessing.

Contract:
- ``PasswordChecker.check(password, stored)`` runs ``verify_password``
  (scrypt: tens of milliseconds of CPU and 16 MiB) in a worker thread, at most
  ``concurrency`` at once; the loop that also serves SMTP never runs it. When
  more than ``max_waiting`` checks already wait, it raises ``Busy`` at once
  instead of queueing without bound; a check whose client got throttled
  while it waited is not run at all.
- ``LoginThrottle`` counts failed logins per client address. After
  ``max_failures`` failures the address must wait ``BASE_DELAY`` seconds,
  doubling with each further failure up to ``MAX_DELAY``; ``retry_after``
  says how long (0: go ahead). A success forgets the address; so does an hour
  without failures. At most ``MAX_TRACKED`` addresses are kept (the oldest
  are dropped first), so a flood from many addresses cannot grow memory.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from mailmoat.web.auth import verify_password

BASE_DELAY = 30.0
MAX_DELAY = 3600.0
FORGET_AFTER = 3600.0
MAX_TRACKED = 10_000


class Busy(Exception):
    """Too many password checks already waiting."""


class PasswordChecker:
    def __init__(self, concurrency: int = 2, max_waiting: int = 32) -> None:
        self._slots = asyncio.Semaphore(max(1, concurrency))
        self._max_waiting = max_waiting
        self._waiting = 0

    async def check(
        self, password: str, stored: str, still_wanted: Callable[[], bool] = lambda: True
    ) -> bool | None:
        """The verdict, or None when ``still_wanted()`` said no once this
        check's turn came (its address got throttled while it waited)."""
        if self._waiting >= self._max_waiting:
            raise Busy
        self._waiting += 1
        try:
            async with self._slots:
                if not still_wanted():
                    return None
                return await asyncio.to_thread(verify_password, password, stored)
        finally:
            self._waiting -= 1


@dataclass
class _Failures:
    count: int
    last: float
    blocked_until: float = 0.0


class LoginThrottle:
    def __init__(self, max_failures: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_failures = max(1, max_failures)
        self.clock = clock
        self._seen: OrderedDict[str, _Failures] = OrderedDict()

    def _current(self, address: str) -> _Failures | None:
        entry = self._seen.get(address)
        if entry is not None and self.clock() - entry.last > FORGET_AFTER:
            del self._seen[address]
            return None
        return entry

    def retry_after(self, address: str) -> float:
        """Seconds ``address`` must still wait before trying a password."""
        entry = self._current(address)
        if entry is None:
            return 0.0
        return max(0.0, entry.blocked_until - self.clock())

    def failed(self, address: str) -> float:
        """Count a failure; returns the wait it now imposes (0: none yet)."""
        now = self.clock()
        entry = self._current(address)
        if entry is None:
            entry = _Failures(0, now)
        entry.count += 1
        entry.last = now
        over = entry.count - self.max_failures
        delay = 0.0 if over < 0 else min(MAX_DELAY, BASE_DELAY * 2 ** min(over, 20))
        entry.blocked_until = now + delay
        self._seen[address] = entry
        self._seen.move_to_end(address)
        while len(self._seen) > MAX_TRACKED:
            self._seen.popitem(last=False)
        return delay

    def succeeded(self, address: str) -> None:
        self._seen.pop(address, None)
