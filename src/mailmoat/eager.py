"""Run a coroutine in place up to its first wait: Python 3.12's eager tasks, for 3.11.

Contract: ``start(coro)`` runs ``coro`` synchronously in the caller until it
finishes (``Finished`` with its value; an exception it raises propagates at
once) or first waits for something (``Suspended``: await it, in any task,
to drive the coroutine to its end and get its value). Most checks and DNS
cache hits never wait, so they cost no task, no timer, no loop iteration;
timeouts need only guard the ones that do wait.

A started coroutine must go on in the task that started it: what it entered
before its first wait (``asyncio.timeout``, ``current_task()``) is bound to
that task. ``gather(*coros)`` keeps to that: it starts the coroutines in
place one after the other; at the first that waits, the ones not yet
started become tasks and run meanwhile, and the waiting one goes on here.
Values come in argument order; the first exception propagates as soon as it
is raised (if the waiting one still waits then, this task is cancelled
where it waits and the exception raised instead), and what has not finished
by then is cancelled or closed.

Awaited, a ``Suspended`` hands the future its coroutine is
waiting on to that task (which wakes it when the future is done, or throws
a cancellation in), then resumes the coroutine where it stopped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Generator, Sequence
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Finished(Generic[T]):
    """A coroutine's value (a plain class: made once per check run, it costs
    half what a frozen dataclass does)."""

    __slots__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value


class Suspended(Generic[T]):
    __slots__ = ("steps", "waiting_on")

    def __init__(self, steps: Coroutine[Any, Any, T], waiting_on: Any) -> None:
        self.steps = steps
        self.waiting_on = waiting_on

    def __await__(self) -> Generator[Any, None, T]:
        try:
            yield self.waiting_on
        except BaseException as exc:  # a cancellation: it reaches the coroutine where it waits
            try:
                self.waiting_on = self.steps.throw(exc)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            return (yield from self.__await__())
        return (yield from self.steps.__await__())


def start(coro: Coroutine[Any, Any, T]) -> Finished[T] | Suspended[T]:
    try:
        waiting_on = coro.send(None)
    except StopIteration as stop:
        return Finished(stop.value)
    return Suspended(coro, waiting_on)


async def gather(*coros: Coroutine[Any, Any, T]) -> list[T]:
    values: list[T] = []
    for n, coro in enumerate(coros):
        try:
            started = start(coro)
        except BaseException:
            for later in coros[n + 1 :]:
                later.close()
            raise
        if isinstance(started, Finished):
            values.append(started.value)
            continue
        # This one waits: the rest run as tasks meanwhile, and it goes on in
        # this task, where it started (asyncio.timeout and the like bind to
        # the task that entered them).
        rest = [asyncio.ensure_future(later) for later in coros[n + 1 :]]
        try:
            values.append(await _unless_one_fails(started, rest))
            values.extend(await asyncio.gather(*rest))
        finally:
            for task in rest:
                task.cancel()
        break
    return values


async def _unless_one_fails(started: Suspended[T], rest: Sequence[asyncio.Future[T]]) -> T:
    """``await started``, in this task; if one of ``rest`` fails first, its
    exception, at once: this task is cancelled where ``started`` waits
    (which then sees the cancellation) and the exception raised instead."""
    current = asyncio.current_task()
    if not rest or current is None:
        return await started
    failed: list[BaseException] = []
    waiting = True

    def watch(task: asyncio.Future[T]) -> None:
        if not waiting or failed or task.cancelled():
            return
        error = task.exception()
        if error is not None:
            failed.append(error)
            current.cancel()

    for task in rest:
        task.add_done_callback(watch)
    try:
        value = await started
    except asyncio.CancelledError:
        if not failed:
            raise
    finally:
        waiting = False
        for task in rest:
            task.remove_done_callback(watch)
    if failed:
        current.uncancel()
        raise failed[0]
    return value
