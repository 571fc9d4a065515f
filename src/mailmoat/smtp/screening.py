"""The gateway's side of one SMTP connection: checks, relay control, delivery.

Contract: ``Screening`` is the ``Handler`` (``smtp/handler.py``) the
protocol engine calls for each well-formed step. It runs the pipeline's
stage for the step and turns a refusal into a ``Verdict`` that carries the
``Outcome`` to log; scores the engine's findings with
``checks.doors.finding_evidence`` (symbol, a forced 550 on ``enforce``, a
drop on ``drop``); keeps the pregreet pass cache; applies relay control
(``core/relay.py``: a recipient outside ``relay.domains`` is ``554 5.7.1``
before any check); runs the upstream leg in lockstep (``smtp/leg.py``)
and delivers at end of DATA to the upstream, the Maildir or the
quarantine. The verdict of end of DATA is ``250`` only once one of them
holds the message. It writes nothing to the client.
"""

from __future__ import annotations

import contextlib
import logging

from mailmoat.checks.doors import FINDING_RULES, finding_action, finding_evidence
from mailmoat.core.findings import Finding
from mailmoat.core.record import record_for
from mailmoat.core.relay import relay_allowed
from mailmoat.core.scoring import Decision
from mailmoat.core.symbols import Action, Stage
from mailmoat.core.transaction import Session, Transaction
from mailmoat.smtp import answers, xforward
from mailmoat.smtp.answers import GO, Answer, Outcome, Verdict, drop, refuse, say
from mailmoat.smtp.host import SessionHost
from mailmoat.smtp.leg import UpstreamLeg
from mailmoat.smtp.outcome import prepare
from mailmoat.store.base import Store, StoreError
from mailmoat.wire import content

log = logging.getLogger("mailmoat.smtp")

# Distinct HELO names judged per session; past it a name is judged each time.
_HELO_NAMES_KEPT = 16


class Screening:
    def __init__(self, host: SessionHost, session: Session) -> None:
        self.host = host
        self.config = host.config
        self.pipeline = host.pipeline
        self.session = session
        self.tx: Transaction | None = None
        self.leg = UpstreamLeg(host)
        self._helo_judged: set[str] = set()
        self._pass_store: Store | None = None

    # -- before the first command --------------------------------------------

    async def on_connect(self) -> Verdict:
        scratch = Transaction(self.session)
        decision = await self.pipeline.run(Stage.CONNECT, scratch)
        if decision.is_final_refusal:
            return refuse(decision, _refused(scratch, decision, Stage.CONNECT))
        return GO

    def _pass_key(self) -> str:
        return f"pass:pregreet:{self.session.client_ip}"

    async def greeting_delay(self) -> float:
        settings = self.config.pregreet
        if settings.delay <= 0 or self.session.allowlisted:
            return 0.0
        store = self.host.services.store
        # Store down: no cached pass, so the client waits the delay (safe).
        try:
            if store is not None and await store.get(self._pass_key()) is not None:
                return 0.0
        except StoreError as exc:
            log.warning("client=%s pregreet cache unavailable: %s", self.session.client_ip, exc)
            store = None
        self._pass_store = store
        return settings.delay

    async def on_patient(self) -> None:
        if self._pass_store is not None:
            with contextlib.suppress(StoreError):
                await self._pass_store.set(self._pass_key(), b"1", self.config.pregreet.pass_ttl)

    async def on_finding(self, finding: Finding) -> Verdict:
        evidence = finding_evidence(finding, self.config)
        if finding is Finding.UNDECLARED_8BIT and self.tx is not None:
            self.tx.symbols.extend(evidence.symbols)  # a finding about this message
            return GO
        self.session.symbols.extend(evidence.symbols)
        if finding_action(finding, self.config) == "drop":
            tx = self.tx or Transaction(self.session)
            reason = FINDING_RULES[finding].reason
            return drop(Outcome(tx, None, Action.REJECT.value, reason, Stage.CONNECT))
        self.session.forced.extend(evidence.forced)
        return GO

    # -- the envelope ----------------------------------------------------------

    async def on_helo(self, name: str) -> Verdict:
        """Run the helo stage for a name not judged yet in this session.

        A session greets again after STARTTLS (and may at any time): the
        same name is not judged twice, and a new one adds only symbols the
        session does not hold yet, so no finding is ever counted twice."""
        judged = self._helo_judged
        if name.lower() in judged:
            return GO
        if len(judged) < _HELO_NAMES_KEPT:
            judged.add(name.lower())
        symbols = self.session.symbols
        held = len(symbols)
        decision = await self.pipeline.run(Stage.HELO, Transaction(self.session))
        seen = {symbol.name for symbol in symbols[:held]}
        fresh = []
        for symbol in symbols[held:]:
            if symbol.name not in seen:
                seen.add(symbol.name)
                fresh.append(symbol)
        symbols[held:] = fresh
        if decision.is_final_refusal:
            return refuse(decision, _refused(Transaction(self.session), decision, Stage.HELO))
        return GO

    async def on_mail(self, sender: str, options: list[str], forwarded: dict[str, str]) -> Verdict:
        self.leg.end()
        session = self.session
        if forwarded:
            session = xforward.forwarded_session(self.session, forwarded)
            scratch = Transaction(session)
            for stage in (Stage.CONNECT, Stage.HELO):
                early = await self.pipeline.run(stage, scratch)
                if early.is_final_refusal:
                    await _run_cleanups(session)
                    return refuse(early, _refused(scratch, early, stage))
        tx = Transaction(session, mail_from=sender, mail_options=options)
        decision = await self.pipeline.run(Stage.MAIL, tx)
        if decision.is_final_refusal:
            if session is not self.session:
                await _run_cleanups(session)
            return refuse(decision, _refused(tx, decision, Stage.MAIL))
        self.tx = tx
        return GO

    async def on_rcpt(self, rcpt: str) -> Verdict:
        tx = self.tx
        assert tx is not None, "the engine sends RCPT only after an accepted MAIL"
        tx.rcpt_attempts += 1
        tx.current_rcpt = rcpt
        if not relay_allowed(rcpt, self.config.relay.domains):
            denied = Answer(554, "5.7.1", f"<{rcpt[:100]}>: Relay access denied")
            return say(
                denied,
                Outcome(tx, None, Action.REJECT.value, "relay_denied", Stage.RCPT, (rcpt,)),
            )
        decision = await self.pipeline.run(Stage.RCPT, tx)
        if decision.is_final_refusal:
            return refuse(decision, _refused(tx, decision, Stage.RCPT))
        if self.host.upstream_address is not None:
            reply = await self.leg.rcpt(tx, rcpt)
            if not reply.ok:
                permanent = reply.code >= 500
                action = Action.REJECT if permanent else Action.SOFT_REJECT
                reason = "unknown_recipient" if permanent else "upstream_tempfail"
                outcome = Outcome(tx, decision, action.value, reason, Stage.RCPT, (rcpt,))
                return say(Answer.of_upstream(reply), outcome)
        tx.rcpts.append(rcpt)
        return GO

    # -- the message -----------------------------------------------------------

    async def on_message(self, payload: bytes) -> Verdict:
        tx = self.tx
        assert tx is not None, "the engine sends DATA only after an accepted MAIL"
        tx.data = content.normalize_line_ends(content.unstuff(payload))
        decision = await self.pipeline.run(Stage.DATA, tx)
        if decision.is_final_refusal:
            await self.leg.rset()
            action = Action.SOFT_REJECT if decision.code < 500 else Action.REJECT
            outcome = Outcome(tx, decision, action.value, decision.reason, Stage.DATA)
            return refuse(decision, outcome)
        answer = await self._deliver(tx, decision)
        if answer.code < 300:
            quarantined = decision.action is Action.QUARANTINE
            reason = "quarantined" if quarantined else decision.reason
            action_name = decision.action.value
        else:
            reason, action_name = "delivery_failed", Action.SOFT_REJECT.value
        return say(answer, Outcome(tx, decision, action_name, reason, Stage.DATA))

    async def on_message_refused(self, answer: Answer, reason: str) -> Verdict:
        tx = self.tx
        assert tx is not None, "the engine sends DATA only after an accepted MAIL"
        await self.leg.rset()
        action = Action.SOFT_REJECT if answer.code < 500 else Action.REJECT
        return say(answer, Outcome(tx, None, action.value, reason, Stage.DATA))

    async def _deliver(self, tx: Transaction, decision: Decision) -> Answer:
        message = prepare(tx, decision, self.config)
        if decision.action is Action.QUARANTINE:
            await self.leg.rset()
            return await self.host.quarantine_message(tx, message)
        if decision.action is Action.DISCARD:
            await self.leg.rset()
            return answers.queued(tx.queue_id)
        if self.host.upstream_address is None:
            return await self.host.deliver_local(tx, message)
        reply = await self.leg.data(tx, message)
        if reply is None:
            return answers.UPSTREAM_UNAVAILABLE
        return Answer.of_upstream(reply)

    # -- ends ------------------------------------------------------------------

    async def on_end(self) -> None:
        """Forget the transaction; a forwarded client's session ends with it."""
        tx, self.tx = self.tx, None
        self.leg.end()
        if tx is not None and tx.session is not self.session:
            await _run_cleanups(tx.session)

    async def on_reset(self) -> None:
        await self.on_end()
        await self.leg.rset()

    async def record(self, outcome: Outcome, answer: Answer) -> None:
        record = record_for(
            outcome.tx,
            outcome.decision,
            action=outcome.action,
            reason=outcome.reason,
            stage=outcome.stage,
            reply=answer.line(),
            node=self.host.node,
            rcpts=outcome.rcpts,
        )
        await self.pipeline.finish(record)

    async def on_close(self) -> None:
        await self.leg.release()
        await self.on_end()
        await _run_cleanups(self.session)


def _refused(tx: Transaction, decision: Decision, stage: Stage) -> Outcome:
    rcpts = (tx.current_rcpt,) if tx.current_rcpt else ()
    return Outcome(tx, decision, decision.action.value, decision.reason, stage, rcpts)


async def _run_cleanups(session: Session) -> None:
    for cleanup in session.cleanups:
        try:
            await cleanup()
        except StoreError as exc:
            log.warning("client=%s cleanup failed: %s", session.client_ip, exc)
        except Exception:
            log.exception("client=%s cleanup failed", session.client_ip)
    session.cleanups.clear()
