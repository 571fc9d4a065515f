"""The check runner: timeouts, failure modes, waves, score overrides."""

from __future__ import annotations

import asyncio
from typing import ClassVar

from mailmoat.checks.base import Check, Services
from mailmoat.config import CheckSettings, Config
from mailmoat.core.scoring import Decision
from mailmoat.core.symbols import Action, Evidence, Forced, Precedence, Stage
from mailmoat.core.transaction import Session, Transaction
from mailmoat.pipeline import Pipeline


class Emits(Check):
    name: ClassVar[str] = "emits"
    stage: ClassVar[str] = Stage.DATA

    async def run(self, tx: Transaction, evidence: Evidence) -> None:
        evidence.add("EMITS_SOMETHING", 2.0, "why")


class Crashes(Check):
    name: ClassVar[str] = "crashes"
    stage: ClassVar[str] = Stage.DATA

    async def run(self, tx: Transaction, evidence: Evidence) -> None:
        raise RuntimeError("boom")


class Hangs(Check):
    name: ClassVar[str] = "hangs"
    stage: ClassVar[str] = Stage.DATA

    async def run(self, tx: Transaction, evidence: Evidence) -> None:
        await asyncio.sleep(60)


class Allows(Check):
    name: ClassVar[str] = "allows"
    stage: ClassVar[str] = Stage.CONNECT

    async def run(self, tx: Transaction, evidence: Evidence) -> None:
        evidence.force(Forced(Action.ACCEPT, Precedence.PERMANENT_ALLOW, "allowlist"))


class Blocks(Check):
    name: ClassVar[str] = "blocks"
    stage: ClassVar[str] = Stage.RCPT

    async def run(self, tx: Transaction, evidence: Evidence) -> None:
        evidence.add("BLOCKS_HIT", 1.0)
        evidence.force(
            Forced(Action.SOFT_REJECT, Precedence.TEST, "greylist", 451, "4.7.1", "Greylisted")
        )


def make(enabled: list[Check], **config: object) -> tuple[Pipeline, Transaction]:
    pipeline = Pipeline(Services(Config(**config)), enabled)  # type: ignore[arg-type]
    return pipeline, Transaction(Session(client_ip="192.0.2.1"))


async def test_scores_can_be_overridden_in_config() -> None:
    pipeline, tx = make([Emits()], scores={"EMITS_SOMETHING": 7.5})
    decision = await pipeline.run(Stage.DATA, tx)
    assert [(s.name, s.score, s.detail) for s in tx.symbols] == [("EMITS_SOMETHING", 7.5, "why")]
    assert (decision.action, decision.score) == (Action.ADD_HEADER, 7.5)


async def test_crashing_check_becomes_symbol_and_accept_by_default() -> None:
    pipeline, tx = make([Crashes(), Emits()])
    decision = await pipeline.run(Stage.DATA, tx)
    names = {s.name: s.detail for s in tx.symbols}
    assert "RuntimeError: boom" in names["CHECK_CRASHES_FAILED"]
    assert "EMITS_SOMETHING" in names
    assert decision.action is Action.ACCEPT


async def test_timed_out_check_with_tempfail_mode_gives_451() -> None:
    settings = {"hangs": CheckSettings(timeout=0.05, fail_mode="tempfail")}
    pipeline, tx = make([Hangs()], checks=settings)
    decision = await asyncio.wait_for(pipeline.run(Stage.DATA, tx), 2)
    assert decision.reply().startswith("451 4.3.0")
    assert decision.reason == "check_failure"
    assert tx.symbols[0].detail == "timeout after 0.05s"


class RaisesTimeout(Check):
    name: ClassVar[str] = "raises_timeout"
    stage: ClassVar[str] = Stage.DATA

    async def run(self, tx: Transaction, evidence: Evidence) -> None:
        raise TimeoutError("its own socket timed out")


async def test_check_raising_timeout_error_itself_is_a_crash_not_our_timeout() -> None:
    pipeline, tx = make([RaisesTimeout()])
    await pipeline.run(Stage.DATA, tx)
    assert tx.symbols[0].name == "CHECK_RAISES_TIMEOUT_FAILED"
    assert tx.symbols[0].detail == "TimeoutError: its own socket timed out"


async def test_allowlist_wave_skips_later_checks_and_wins() -> None:
    pipeline, tx = make([Allows(), Blocks()])
    await pipeline.run(Stage.CONNECT, tx)
    tx.current_rcpt = "bob@example.org"
    decision = await pipeline.run(Stage.RCPT, tx)
    assert decision.action is Action.ACCEPT
    assert "BLOCKS_HIT" not in {s.name for s in tx.symbols}


async def test_rcpt_refusal_applies_to_that_recipient_only() -> None:
    pipeline, tx = make([Blocks()])
    first = await pipeline.run(Stage.RCPT, tx)
    assert first.reply() == "451 4.7.1 Greylisted"
    assert tx.forced == []
    data = await pipeline.run(Stage.DATA, tx)
    assert data.action is Action.ACCEPT


class WaitsTwice(Check):
    """Waits for I/O twice, then emits: the runner must drive it to its end."""

    name: ClassVar[str] = "waits_twice"
    stage: ClassVar[str] = Stage.DATA

    async def run(self, tx: Transaction, evidence: Evidence) -> None:
        await asyncio.sleep(0.02)
        await asyncio.sleep(0)
        evidence.add("WAITED", 1.0)


class CrashesAfterWaiting(Check):
    name: ClassVar[str] = "crashes_late"
    stage: ClassVar[str] = Stage.DATA

    async def run(self, tx: Transaction, evidence: Evidence) -> None:
        await asyncio.sleep(0.01)
        raise ValueError("late boom")


class CleansUp(Check):
    """Hangs, and records that the timeout's cancellation reached it."""

    name: ClassVar[str] = "cleans_up"
    stage: ClassVar[str] = Stage.DATA

    def __init__(self) -> None:
        self.cancelled = False

    async def run(self, tx: Transaction, evidence: Evidence) -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            self.cancelled = True
            raise


class SeesItsTask(Check):
    name: ClassVar[str] = "sees_task"
    stage: ClassVar[str] = Stage.DATA

    def __init__(self) -> None:
        self.task: asyncio.Task[object] | None = None

    async def run(self, tx: Transaction, evidence: Evidence) -> None:
        self.task = asyncio.current_task()


async def test_checks_that_wait_run_concurrently_and_to_their_end() -> None:
    pipeline, tx = make([WaitsTwice(), CrashesAfterWaiting(), Emits()])
    started = asyncio.get_running_loop().time()
    await asyncio.wait_for(pipeline.run(Stage.DATA, tx), 2)
    names = [s.name for s in tx.symbols]  # in check order, whoever finished first
    assert names == ["WAITED", "CHECK_CRASHES_LATE_FAILED", "EMITS_SOMETHING"]
    assert "ValueError: late boom" in tx.symbols[1].detail
    assert asyncio.get_running_loop().time() - started < 1


async def test_timeout_cancels_a_waiting_check_where_it_waits() -> None:
    hanging = CleansUp()
    settings = {"cleans_up": CheckSettings(timeout=0.05)}
    pipeline, tx = make([hanging, WaitsTwice()], checks=settings)
    await asyncio.wait_for(pipeline.run(Stage.DATA, tx), 2)
    assert hanging.cancelled
    assert [s.name for s in tx.symbols] == ["CHECK_CLEANS_UP_FAILED", "WAITED"]


async def test_check_that_never_waits_runs_in_the_callers_task() -> None:
    check = SeesItsTask()
    pipeline, tx = make([check, Emits()])
    await pipeline.run(Stage.DATA, tx)
    assert check.task is asyncio.current_task()


class TimedLookup(Check):
    """Enters its own timeout before it first waits, as the DNS checks do."""

    stage: ClassVar[str] = Stage.DATA

    def __init__(self, name: str, delay: float, limit: float) -> None:
        self.name = name  # type: ignore[misc]
        self.delay, self.limit = delay, limit

    async def run(self, tx: Transaction, evidence: Evidence) -> None:
        try:
            async with asyncio.timeout(self.limit):
                await asyncio.sleep(self.delay)
        except TimeoutError:
            evidence.add(f"{self.name.upper()}_DNS_TIMEOUT", 0.0)
            return
        evidence.add(f"{self.name.upper()}_ANSWERED", 0.0)


async def test_own_timeouts_of_waiting_checks_hit_only_their_check() -> None:
    checks = [TimedLookup("first", 0.3, 0.05), TimedLookup("second", 0.05, 1), Emits()]
    pipeline, tx = make(checks)  # type: ignore[arg-type]
    await asyncio.wait_for(pipeline.run(Stage.DATA, tx), 2)
    assert [s.name for s in tx.symbols] == [
        "FIRST_DNS_TIMEOUT",
        "SECOND_ANSWERED",
        "EMITS_SOMETHING",
    ]


async def test_verdict_observers_see_the_data_decision_and_cannot_break_it() -> None:
    pipeline, tx = make([Emits(), Blocks()])
    seen: list[tuple[str, Action, float]] = []

    def broken(services: Services, tx: Transaction, decision: object) -> None:
        raise RuntimeError("observer bug")

    def observe(services: Services, tx: Transaction, decision: Decision) -> None:
        seen.append((tx.queue_id, decision.action, decision.score))

    pipeline.services.verdict_observers[:] = [broken, observe]
    tx.current_rcpt = "user@example.org"
    await pipeline.run(Stage.RCPT, tx)
    assert seen == []  # before DATA there is no verdict to learn from
    decision = await pipeline.run(Stage.DATA, tx)
    assert decision.score == 3.0
    assert seen == [(tx.queue_id, decision.action, 3.0)]


class SlowProducer(Check):
    """Waits, then leaves a typed result that ``Consumer`` reads."""

    name: ClassVar[str] = "producer"
    stage: ClassVar[str] = Stage.DATA

    async def run(self, tx: Transaction, evidence: Evidence) -> None:
        await asyncio.sleep(0.02)
        tx.session.dnswl = True


class Consumer(Check):
    name: ClassVar[str] = "consumer"
    stage: ClassVar[str] = Stage.DATA

    async def run(self, tx: Transaction, evidence: Evidence) -> None:
        evidence.add("CONSUMER_SAW", 0.0, str(tx.session.dnswl))


async def test_a_check_runs_after_the_checks_it_requires_whatever_the_build_order() -> None:
    checks: list[Check] = [Consumer(), SlowProducer()]
    services = Services(Config())
    ordered = Pipeline(services, checks, requires={"consumer": ("producer",)})
    tx = Transaction(Session(client_ip="192.0.2.1"))
    await ordered.run(Stage.DATA, tx)
    assert [(s.name, s.detail) for s in tx.symbols] == [("CONSUMER_SAW", "True")]
    # Without the requirement both run at once: the consumer misses the result.
    unordered = Pipeline(services, checks, requires={})
    tx = Transaction(Session(client_ip="192.0.2.1"))
    await unordered.run(Stage.DATA, tx)
    assert [(s.name, s.detail) for s in tx.symbols] == [("CONSUMER_SAW", "False")]


class AlsoConnect(Check):
    name: ClassVar[str] = "also_connect"
    stage: ClassVar[str] = Stage.CONNECT

    async def run(self, tx: Transaction, evidence: Evidence) -> None:
        evidence.add("ALSO_CONNECT_RAN", 0.0)


class SparedConnect(AlsoConnect):
    name: ClassVar[str] = "spared_connect"

    async def run(self, tx: Transaction, evidence: Evidence) -> None:
        evidence.add("SPARED_CONNECT_RAN", 0.0)


async def test_the_allowlist_spares_the_checks_that_require_it_at_its_stage() -> None:
    checks: list[Check] = [Allows(), AlsoConnect(), SparedConnect()]
    pipeline = Pipeline(Services(Config()), checks, requires={"spared_connect": ("allows",)})
    tx = Transaction(Session(client_ip="192.0.2.1"))
    await pipeline.run(Stage.CONNECT, tx)
    assert [s.name for s in tx.session.symbols] == ["ALSO_CONNECT_RAN"]
    assert tx.session.allowlisted
