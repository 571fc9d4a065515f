"""A worker's budget of message bytes held for transactions in flight.

Contract: ``ByteBudget(limit)`` counts bytes that ``Hold`` objects claim
(``hold.claim(n)`` sets what one transaction holds now, ``release()`` gives
it all back; both idempotent); ``fits(n)`` says whether ``n`` more bytes
stay within ``limit``; ``limit <= 0`` means no limit. It never refuses a
claim itself: callers ask ``fits``/``claim``'s answer and answer the client
(``452 4.3.1``). Single-threaded (one event loop per worker).
"""

from __future__ import annotations


class ByteBudget:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def fits(self, size: int) -> bool:
        return self.limit <= 0 or self.used + size <= self.limit

    def hold(self) -> Hold:
        return Hold(self)


class Hold:
    """What one transaction holds of a ``ByteBudget``."""

    def __init__(self, budget: ByteBudget) -> None:
        self.budget = budget
        self.size = 0

    def claim(self, size: int) -> bool:
        """Hold ``size`` bytes in all (not more); False when the budget is
        then over its limit."""
        self.budget.used += size - self.size
        self.size = size
        return self.budget.limit <= 0 or self.budget.used <= self.budget.limit

    def release(self) -> None:
        self.claim(0)
