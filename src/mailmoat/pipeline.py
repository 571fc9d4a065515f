"""The check runner: stages, timeouts, failure modes, score overrides.

Contract: ``Pipeline.run(stage, tx)`` runs the enabled checks of one stage
(concurrently, in waves: a check runs after the checks of its stage it
``requires``, see ``mailmoat.checks.order``), stores their evidence on the session
(connect, helo) or the transaction (mail, rcpt, data), and returns the
``Decision`` for that point of the dialogue. It never raises because of a
check: a crashed or timed-out check becomes a ``CHECK_<NAME>_FAILED`` symbol
(score 0) plus, when its fail mode is "tempfail", a forced 451.
Recipient-stage forced verdicts apply to that recipient only.
``finish(record)`` hands a finished transaction to the recorders; the
end-of-DATA decision also goes to the callables in
``services.verdict_observers`` (autolearn), which must not wait.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence

from mailmoat import eager, metrics
from mailmoat.checks.base import Check, Services
from mailmoat.checks.doors import RUNNER_SPEC
from mailmoat.checks.order import waves
from mailmoat.checks.registry import requirements, runner_settings
from mailmoat.config import CheckSettings
from mailmoat.core.record import TransactionRecord
from mailmoat.core.scoring import Decision, decide
from mailmoat.core.symbols import Action, Evidence, Forced, Precedence, Stage, Symbol
from mailmoat.core.transaction import Transaction
from mailmoat.store.base import StoreError

log = logging.getLogger("mailmoat.pipeline")
translog = logging.getLogger("mailmoat.transaction")

Recorder = Callable[[TransactionRecord], Awaitable[None] | None]

_SESSION_STAGES = (Stage.CONNECT, Stage.HELO)
_EARLY_STAGES = (Stage.CONNECT, Stage.HELO, Stage.MAIL)


class Pipeline:
    def __init__(
        self,
        services: Services,
        checks: list[Check],
        requires: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        """``requires``: each check's required checks by name (default: the
        registry's specs; a check without an entry requires nothing)."""
        self.services = services
        self.checks = checks
        self.recorders: list[Recorder] = []
        self._settings: dict[str, CheckSettings] = {}
        self._waves = waves(checks, requirements() if requires is None else requires)

    async def run(self, stage: Stage, tx: Transaction) -> Decision:
        config = self.services.config
        if stage is Stage.DATA:
            tx.eod_started = time.monotonic()
        found = Evidence()
        for wave in self._waves[stage]:
            runnable = wave
            if tx.allowlisted or any(f.action is Action.ACCEPT for f in found.forced):
                runnable = [c for c in wave if c.runs_when_allowlisted]
                if not runnable:
                    continue
            results = await self._run_wave(runnable, tx)
            for evidence in results:
                found.symbols.extend(evidence.symbols)
                found.forced.extend(evidence.forced)
        # As ``rescored`` gives them; a symbol without an override is kept
        # (it is immutable) rather than made again.
        scores = config.scores
        symbols = found.symbols
        if scores:
            symbols = [
                s if s.name not in scores else self.rescored(s.name, s.score, s.detail)
                for s in symbols
            ]
        if stage in _SESSION_STAGES:
            tx.session.symbols.extend(symbols)
            tx.session.forced.extend(found.forced)
        else:
            tx.symbols.extend(symbols)
            if stage is not Stage.RCPT:
                tx.forced.extend(found.forced)
        if stage in _EARLY_STAGES:
            immediate = [f for f in found.forced if f.immediate]
            return decide([], immediate, config.actions, stage)
        forced = [*tx.all_forced, *found.forced] if stage is Stage.RCPT else tx.all_forced
        decision = decide(tx.all_symbols, forced, config.actions, stage)
        if stage is Stage.DATA:
            self._observe(tx, decision)
        return decision

    def _observe(self, tx: Transaction, decision: Decision) -> None:
        """Hand the end-of-DATA verdict to the observers registered in
        ``services.verdict_observers`` (autolearn), with this
        pipeline's services (their config is the current one after a
        reload); observers do no I/O."""
        for observe in self.services.verdict_observers:
            try:
                observe(self.services, tx, decision)
            except Exception:
                log.exception("verdict observer %r failed for %s", observe, tx.queue_id)

    async def finish(self, record: TransactionRecord) -> None:
        if translog.isEnabledFor(logging.INFO):
            translog.info(record.log_line())
        if record.eod_seconds >= 0:
            metrics.observe_eod(record.eod_seconds)
        for recorder in self.recorders:
            try:
                result = recorder(record)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("recorder %r failed for %s", recorder, record.queue_id)

    def settings(self, check: Check) -> CheckSettings:
        """The check's runner settings (``[checks.NAME]`` or its spec's defaults)."""
        found = self._settings.get(check.name)
        if found is None:
            found = self._settings[check.name] = runner_settings(self.services.config, check.name)
        return found

    def rescored(self, name: str, default: float, detail: str = "") -> Symbol:
        """The symbol with its configured score (``[scores]``) or its default."""
        return Symbol(name, self.services.config.scores.get(name, default), detail)

    async def _run_wave(self, checks: list[Check], tx: Transaction) -> list[Evidence]:
        """Every check of one wave, concurrently; their evidence in check order.

        As ``eager.gather`` does, but without a coroutine of the runner's own
        around each check: the checks start in place one after the other
        (most content checks never wait for I/O and so cost no task and no
        timer). At the first check that waits, the checks not yet started
        run as tasks (``_checked``) meanwhile and the waiting one goes on in
        this task, under its timeout.
        """
        results: list[Evidence] = []
        perf_counter = time.perf_counter
        for n, check in enumerate(checks):
            evidence = Evidence()
            began = perf_counter()
            steps = check.run(tx, evidence)
            try:
                waiting_on = steps.send(None)  # eager.start, in place
            except StopIteration:
                metrics.observe_check(check.name, perf_counter() - began)
                results.append(evidence)
                continue
            except Exception as exc:  # TimeoutError too: the check's own, it never waited
                results.append(self._failure(check, tx, exc))
                continue
            started = eager.Suspended(steps, waiting_on)
            rest = [asyncio.ensure_future(self._checked(later, tx)) for later in checks[n + 1 :]]
            try:
                results.append(await self._waited(check, tx, evidence, started, began))
                results.extend(await asyncio.gather(*rest))
            finally:
                for task in rest:
                    task.cancel()
            break
        return results

    async def _checked(self, check: Check, tx: Transaction) -> Evidence:
        """Run one check; its evidence, or that of its failure. The timeout
        is armed only if the check waits (a check that does not cannot be
        interrupted anyway)."""
        evidence = Evidence()
        began = time.perf_counter()
        try:
            started = eager.start(check.run(tx, evidence))
        except Exception as exc:  # TimeoutError too: the check's own, it never waited
            return self._failure(check, tx, exc)
        if isinstance(started, eager.Finished):
            metrics.observe_check(check.name, time.perf_counter() - began)
            return evidence
        return await self._waited(check, tx, evidence, started, began)

    async def _waited(
        self,
        check: Check,
        tx: Transaction,
        evidence: Evidence,
        started: eager.Suspended[None],
        began: float,
    ) -> Evidence:
        """Drive a started check that waits to its end under its timeout;
        its evidence, or that of its failure."""
        timeout = self.settings(check).timeout
        try:
            async with asyncio.timeout(timeout):
                await started
            metrics.observe_check(check.name, time.perf_counter() - began)
            return evidence
        except TimeoutError:
            metrics.count_check_failure(check.name, "timeout")
            return self._failed(check, tx, f"timeout after {timeout:g}s")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return self._failure(check, tx, exc)

    def _failure(self, check: Check, tx: Transaction, exc: Exception) -> Evidence:
        if isinstance(exc, StoreError):
            metrics.count_check_failure(check.name, "store")
            return self._failed(check, tx, f"store unavailable: {exc}", store_failure=True)
        log.exception("check %s failed for %s", check.name, tx.queue_id, exc_info=exc)
        metrics.count_check_failure(check.name, "error")
        return self._failed(check, tx, f"{type(exc).__name__}: {exc}")

    def _failed(
        self, check: Check, tx: Transaction, problem: str, *, store_failure: bool = False
    ) -> Evidence:
        """The evidence of a check that crashed or timed out. When the shared
        state is unavailable, ``store.fail_mode`` applies (default tempfail),
        whatever the check's own fail mode."""
        config = self.services.config
        fail_mode = config.store.fail_mode if store_failure else self.settings(check).fail_mode
        log.warning(
            "check=%s queue_id=%s failed: %s; fail_mode=%s",
            check.name,
            tx.queue_id,
            problem,
            fail_mode,
        )
        failed = Evidence()
        RUNNER_SPEC.add(failed, f"CHECK_{check.name.upper()}_FAILED", problem)
        if fail_mode == "tempfail":
            failed.force(
                Forced(
                    Action.SOFT_REJECT,
                    Precedence.TEST,
                    "check_failure",
                    451,
                    "4.3.0",
                    f"Temporary failure in the {check.name} check, try again later",
                )
            )
        return failed
