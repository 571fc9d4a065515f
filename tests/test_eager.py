"""Coroutines run in place up to their first wait, then driven by any task."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from typing import Any

import pytest

from mailmoat import eager


async def no_wait(value: int) -> int:
    return value * 2


async def fails_at_once() -> int:
    raise ValueError("at once")


async def waits(delay: float, value: int) -> int:
    await asyncio.sleep(delay)
    await asyncio.sleep(0)
    return value


async def test_a_coroutine_that_never_waits_finishes_in_place() -> None:
    started = eager.start(no_wait(21))
    assert isinstance(started, eager.Finished) and started.value == 42
    with pytest.raises(ValueError, match="at once"):
        eager.start(fails_at_once())


async def test_a_waiting_coroutine_is_driven_to_its_value() -> None:
    started = eager.start(waits(0.01, 7))
    assert isinstance(started, eager.Suspended)
    assert await started == 7
    again = eager.start(waits(0.01, 8))
    assert isinstance(again, eager.Suspended)
    assert await asyncio.create_task(_await(again)) == 8  # in another task too


async def _await(started: eager.Suspended[int]) -> int:
    return await started


async def test_cancellation_reaches_the_coroutine_where_it_waits() -> None:
    seen: list[str] = []

    async def cleans_up() -> int:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            seen.append("cancelled")
            await asyncio.sleep(0.01)  # may still wait while it cleans up
            seen.append("cleaned")
            raise
        return 0

    started = eager.start(cleans_up())
    assert isinstance(started, eager.Suspended)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await started
    assert seen == ["cancelled", "cleaned"]


async def test_a_coroutine_may_swallow_the_cancellation_and_return() -> None:
    async def swallows() -> str:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            return "gave up"
        return "slept"

    task = asyncio.create_task(_await_any(swallows()))
    await asyncio.sleep(0.01)
    task.cancel()
    assert await task == "gave up"


async def _await_any(coro: Coroutine[Any, Any, str]) -> str:
    started = eager.start(coro)
    assert isinstance(started, eager.Suspended)
    return await started


async def test_gather_keeps_order_and_runs_waiting_ones_concurrently() -> None:
    loop = asyncio.get_running_loop()
    began = loop.time()
    values = await eager.gather(no_wait(1), waits(0.1, 5), no_wait(3), waits(0.1, 7))
    assert values == [2, 5, 6, 7]
    assert loop.time() - began < 0.19  # the two 0.1 s waits overlapped
    assert await eager.gather() == []
    assert await eager.gather(waits(0, 9)) == [9]


async def bounded(delay: float, limit: float) -> str:
    """Enters a timeout before its first wait, as a DNS lookup does."""
    try:
        async with asyncio.timeout(limit):
            await asyncio.sleep(delay)
    except TimeoutError:
        return "timed out"
    return "done"


async def test_timeouts_entered_before_the_first_wait_stay_with_their_coroutine() -> None:
    # Each bounded() enters its timeout in place; the first to wait must go
    # on in this task and the others in their own, or a timeout would cancel
    # the wrong one.
    values = await eager.gather(bounded(0.3, 0.05), bounded(0.05, 1), bounded(0.3, 0.05))
    assert values == ["timed out", "done", "timed out"]
    assert await eager.gather(bounded(0.05, 1), bounded(0.3, 0.05)) == ["done", "timed out"]


async def test_gather_raises_the_first_error_and_closes_the_rest() -> None:
    seen: list[str] = []

    async def records(name: str) -> int:
        try:
            await asyncio.sleep(60)
        finally:
            seen.append(name)
        return 0

    with pytest.raises(ValueError, match="at once"):
        await eager.gather(no_wait(1), fails_at_once(), records("never started"))
    assert seen == []  # closed before it ran
    began = time.monotonic()
    with pytest.raises(ValueError, match="at once"):
        await eager.gather(records("waiting"), _fails_later())
    assert time.monotonic() - began < 10  # not after the waiting one's 60 s
    await asyncio.sleep(0)
    assert seen == ["waiting"]  # it was cancelled where it waited


async def test_a_failure_while_the_first_still_waits_leaves_the_task_usable() -> None:
    with pytest.raises(ValueError, match="at once"):
        await eager.gather(waits(60, 1), _fails_later(), waits(0.01, 3))
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0  # our own cancel was taken back
    await asyncio.sleep(0.02)  # and the task can still wait
    assert await eager.gather(waits(0.01, 4), no_wait(5)) == [4, 10]


async def _fails_later() -> int:
    await asyncio.sleep(0.01)
    raise ValueError("at once")
