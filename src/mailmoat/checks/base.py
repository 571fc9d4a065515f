"""The check interface: one small class per check, registered by name.

A check declares its ``name`` (lower case, also its ``[checks.<name>]``
config key), the ``stage`` it runs at, and ``run(tx, evidence)``. It reads the
session/transaction, adds symbols with default scores and, rarely, a forced
verdict. It must not reply to SMTP, sleep past its timeout, or keep state
outside the store: the runner (``mailmoat.pipeline``) owns timeouts, failure
handling and score overrides. The runner runs a stage's checks in waves made
from what their specs ``require`` (``mailmoat.checks.order``).

Check modules expose ``build(services) -> list[Check]`` and are listed in
``mailmoat.checks.registry``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, ClassVar

from mailmoat.classify.holder import ModelHolder
from mailmoat.config import Config
from mailmoat.core.scoring import Decision
from mailmoat.core.symbols import Evidence, Stage
from mailmoat.core.transaction import Session, Transaction
from mailmoat.dns.base import Resolver
from mailmoat.store.base import Store

# Called with the pipeline's services after every end-of-DATA decision
# (autolearn); must not wait.
VerdictObserver = Callable[["Services", Transaction, Decision], None]


@dataclass
class Services:
    """What checks may touch outside themselves, as small interfaces.

    ``store`` and ``resolver`` are None when not configured (checks that
    need them then build nothing); ``clock`` returns seconds since the epoch
    and is replaced in tests; ``model`` is the process's classifier model
    holder and ``verdict_observers`` watch end-of-DATA decisions: both are
    shared by every rebuild of the services (``mailmoat.runtime``).
    """

    config: Config
    store: Store | None = None
    resolver: Resolver | None = None
    clock: Callable[[], float] = time.time
    model: ModelHolder = field(default_factory=ModelHolder)
    verdict_observers: list[VerdictObserver] = field(default_factory=list)


class Check(ABC):
    name: ClassVar[str]
    stage: ClassVar[str]
    # Runs even for allowlisted clients (e.g. size limits, header cleanup).
    runs_when_allowlisted: ClassVar[bool] = False

    @abstractmethod
    async def run(self, tx: Transaction, evidence: Evidence) -> None:
        """Look at ``tx`` and add evidence. Raising is a check failure."""

    @property
    def stage_enum(self) -> Stage:
        return Stage(self.stage)


def start_session_task(
    session: Session, key: str, make: Callable[[], Coroutine[Any, Any, Any]]
) -> None:
    """Run ``make()`` in the background once per session, under ``session.notes[key]``.

    The task is cancelled (and awaited) by the session's cleanups if it is
    still running when the session ends.
    """
    if key in session.notes:
        return
    task = asyncio.get_running_loop().create_task(make())
    session.notes[key] = task

    async def cancel() -> None:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    session.cleanups.append(cancel)
