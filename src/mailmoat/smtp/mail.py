"""The mail transaction commands: MAIL, RCPT, DATA, and delivery.

Contract: ``MailCommands`` adds to a ``Dialogue`` the envelope and message
handling: syntax and parameter checks, relay control, the mail/rcpt/data
stages of the pipeline, the upstream leg in lockstep (before-queue) and the
final delivery (upstream, Maildir or quarantine). The client hears ``250``
at end of DATA only when the message is safely with one of them; anything
else is a 4xx or 5xx reply with an enhanced status code.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from mailmoat.checks.doors import FRONT_SPEC
from mailmoat.core.relay import AddressError, parse_path, relay_allowed
from mailmoat.core.replies import refusal_line
from mailmoat.core.scoring import Decision
from mailmoat.core.symbols import Action, Stage
from mailmoat.core.transaction import Transaction
from mailmoat.delivery.upstream import ClientFacts, Reply, UpstreamError
from mailmoat.smtp import xforward
from mailmoat.smtp.dialogue import Dialogue, Hangup
from mailmoat.smtp.outcome import prepare
from mailmoat.wire import content

log = logging.getLogger("mailmoat.smtp")

# RFC 3463 4.3.1: the worker's budget of message bytes in flight is spent.
INSUFFICIENT = "452 4.3.1 Insufficient system resources, try again later"
# DATA starts only with room for its declared SIZE or at least this much.
DATA_ROOM = 65_536


class MailCommands(Dialogue):
    async def smtp_MAIL(self, arg: str) -> None:
        if not self.session.helo:
            self.reply("503 5.5.1 Error: send HELO/EHLO first")
            return
        if self.tx is not None:
            self.reply("503 5.5.1 Error: nested MAIL command")
            return
        if not arg.upper().startswith("FROM:"):
            self.reply("501 5.5.4 Syntax: MAIL FROM:<address>")
            return
        path, params = _split_path(arg[5:])
        try:
            sender = parse_path(path, allow_null=True)
        except AddressError as exc:
            self.reply(f"501 5.1.7 Bad sender address syntax: {exc}")
            return
        options, problem = self._mail_options(params)
        if problem:
            self.reply(problem)
            return
        if problem := _address_encoding_problem(sender, options):
            self.reply(problem)
            return
        if not self.gw.inflight.fits(_declared_size(options)):
            self.reply(INSUFFICIENT)
            return
        session = self.session
        if self.forwarded:
            session = xforward.forwarded_session(self.session, self.forwarded)
            self.forwarded = {}
            scratch = Transaction(session)
            for stage in (Stage.CONNECT, Stage.HELO):
                early = await self.pipeline.run(stage, scratch)
                if early.is_final_refusal:
                    await self._refuse(scratch, early, stage)
                    await self._run_cleanups(session)
                    return
        tx = Transaction(session, mail_from=sender, mail_options=options)
        decision = await self.pipeline.run(Stage.MAIL, tx)
        if decision.is_final_refusal:
            await self._refuse(tx, decision, Stage.MAIL)
            if session is not self.session:
                await self._run_cleanups(session)
            return
        self.tx = tx
        self.reply("250 2.1.0 Ok")

    def _mail_options(self, params: list[str]) -> tuple[list[str], str]:
        options: list[str] = []
        if params and not self.session.esmtp:
            return [], "501 5.5.4 Syntax: MAIL FROM:<address> (no parameters after HELO)"
        for param in params:
            keyword, _, value = param.partition("=")
            keyword = keyword.upper()
            if keyword == "SIZE" and value.isdigit():
                if int(value) > self.config.smtp.max_message_size:
                    return [], "552 5.3.4 Message size exceeds fixed maximum message size"
                options.append(f"SIZE={int(value)}")
            elif keyword == "BODY" and value.upper() in ("7BIT", "8BITMIME"):
                options.append(f"BODY={value.upper()}")
            elif keyword == "SMTPUTF8" and not value:
                options.append("SMTPUTF8")
            else:
                return [], f"555 5.5.4 Unsupported parameter {param[:40]}"
        return options, ""

    async def smtp_RCPT(self, arg: str) -> None:
        tx = self.tx
        if tx is None:
            self.reply("503 5.5.1 Error: need MAIL command")
            return
        if not arg.upper().startswith("TO:"):
            self.reply("501 5.5.4 Syntax: RCPT TO:<address>")
            return
        path, params = _split_path(arg[3:])
        if params:
            self.reply(f"555 5.5.4 Unsupported parameter {params[0][:40]}")
            return
        try:
            rcpt = parse_path(path)
        except AddressError as exc:
            self.reply(f"501 5.1.3 Bad recipient address syntax: {exc}")
            return
        if problem := _address_encoding_problem(rcpt, tx.mail_options):
            self.reply(problem)
            return
        if len(tx.rcpts) >= self.config.smtp.max_recipients:
            # Pipelining clients send all their recipients at once: the 452s
            # count as errors only past the overshoot limit, as in Postfix.
            over = tx.notes["rcpt_overshoot"] = tx.notes.get("rcpt_overshoot", 0) + 1
            counted = over > self.config.smtp.recipient_overshoot_limit
            self.reply("452 4.5.3 Too many recipients", counted=counted)
            return
        tx.rcpt_attempts += 1
        tx.current_rcpt = rcpt
        if not relay_allowed(rcpt, self.config.relay.domains):
            line = f"554 5.7.1 <{rcpt[:100]}>: Relay access denied"
            self.reply(line)
            await self._record(
                tx,
                None,
                action=Action.REJECT.value,
                reason="relay_denied",
                stage=Stage.RCPT,
                reply=line,
                rcpts=(rcpt,),
            )
            return
        decision = await self.pipeline.run(Stage.RCPT, tx)
        if decision.is_final_refusal:
            await self._refuse(tx, decision, Stage.RCPT)
            return
        if self.gw.upstream_address is not None:
            reply = await self._upstream_rcpt(tx, rcpt)
            if not reply.ok:
                line = reply.lines()
                self.reply(line)
                reason = "unknown_recipient" if reply.code >= 500 else "upstream_tempfail"
                await self._record(
                    tx,
                    decision,
                    action=(Action.REJECT if reply.code >= 500 else Action.SOFT_REJECT).value,
                    reason=reason,
                    stage=Stage.RCPT,
                    reply=line,
                    rcpts=(rcpt,),
                )
                return
        tx.rcpts.append(rcpt)
        self.reply("250 2.1.5 Ok")

    async def _upstream_begin(self, tx: Transaction, rcpt: str) -> tuple[Reply, Reply | None]:
        """MAIL FROM and the first RCPT upstream, on this session's connection
        or one from the gateway's pool. A pooled connection the upstream has
        meanwhile closed is replaced by a fresh one, once, so it never costs
        the client a 451."""
        facts = ClientFacts(tx.session.client_ip, tx.session.client_rdns, tx.session.helo)
        while True:
            pooled = False
            if self.upstream is not None and not self.gw.is_current(self.upstream):
                await self._close_upstream()  # opened before a reload
            if self.upstream is not None and not await self.upstream.settle():
                self.upstream = None
            if self.upstream is None:
                self.upstream, pooled = await self.gw.take_upstream()
            try:
                return await self.upstream.begin(tx.mail_from, tx.mail_options, facts, rcpt)
            except UpstreamError:
                self.upstream.close()
                self.upstream = None
                if not pooled:
                    raise

    async def _upstream_rcpt(self, tx: Transaction, rcpt: str) -> Reply:
        try:
            if tx.notes.get("upstream_mail"):
                assert self.upstream is not None
                return await self.upstream.rcpt(rcpt)
            mail, first = await self._upstream_begin(tx, rcpt)
            if not mail.ok or first is None:
                return mail
            tx.notes["upstream_mail"] = True
            return first
        except UpstreamError as exc:
            log.warning("queue_id=%s upstream: %s", tx.queue_id, exc.detail)
            tx.notes["upstream_mail"] = False
            if self.upstream is not None:
                self.upstream.close()
                self.upstream = None
            return exc.reply

    async def smtp_DATA(self, arg: str) -> None:
        tx = self.tx
        if tx is None:
            self.reply("503 5.5.1 Error: need MAIL command")
            return
        if arg:
            self.reply("501 5.5.4 Syntax: DATA")
            return
        if not tx.rcpts:
            if tx.rcpt_attempts:
                self.reply("554 5.5.1 Error: no valid recipients")
            else:
                self.reply("503 5.5.1 Error: need RCPT command")
            return
        if not self.gw.inflight.fits(max(_declared_size(tx.mail_options), DATA_ROOM)):
            self.reply(INSUFFICIENT)
            return
        self.reply("354 End data with <CR><LF>.<CR><LF>")
        self.in_data = True
        hold = self.gw.inflight.hold()
        try:
            await self._data(tx, hold.claim)
        except TimeoutError:
            self.reply("421 4.4.2 Timeout exceeded during DATA, closing connection")
            raise Hangup() from None
        except asyncio.CancelledError:
            # Shutdown grace over: the client must not take the close for
            # a delivery (RFC 5321 4.1.1.4: only 250 means we have it).
            self.reply("451 4.3.2 Service shutting down, try again later")
            self.shutdown_told = True
            raise
        finally:
            hold.release()
            self.in_data = False
            await self._end_tx()

    async def _data(self, tx: Transaction, claim: Callable[[int], bool]) -> None:
        limits = self.config.smtp
        deadline = asyncio.get_running_loop().time() + limits.command_timeout
        payload, size = await self.conn.read_data(limits.max_message_size, deadline, claim)
        if payload is not None and not claim(len(payload)):
            payload = None
        if payload is None and size <= limits.max_message_size:
            await self._refuse_data(tx, INSUFFICIENT, "inflight_budget")
            return
        refusal = self._payload_refusal(tx, payload, size)
        if refusal:
            await self._refuse_data(
                tx, refusal, "size" if refusal.startswith("552") else "protocol"
            )
            return
        assert payload is not None
        tx.data = content.normalize_line_ends(content.unstuff(payload))
        decision = await self.pipeline.run(Stage.DATA, tx)
        if decision.is_final_refusal:
            line = refusal_line(decision, Stage.DATA)
            await self._refuse_data(tx, line, decision.reason, decision)
            return
        line = await self._deliver(tx, decision)
        self.reply(line)
        if line.startswith("2"):
            reason = "quarantined" if decision.action is Action.QUARANTINE else decision.reason
            action = decision.action.value
        else:
            reason, action = "delivery_failed", Action.SOFT_REJECT.value
        await self._record(tx, decision, action=action, reason=reason, stage=Stage.DATA, reply=line)

    def _payload_refusal(self, tx: Transaction, payload: bytes | None, size: int) -> str:
        limits = self.config.smtp
        if payload is None:
            return "552 5.3.4 Message size exceeds fixed maximum message size"
        facts = content.inspect(payload, limits.max_line_length)
        if facts.long_line:
            return f"554 5.6.0 Message has lines longer than {limits.max_line_length} bytes"
        if facts.has_nul:
            return "554 5.6.0 Message contains NUL characters"
        if facts.bare_newline and limits.bare_newline == "reject":
            return "554 5.5.2 Message contains bare <CR> or <LF> line ends"
        if facts.has_8bit and not {"BODY=8BITMIME", "SMTPUTF8"} & set(tx.mail_options):
            if self.config.protocol.strict_8bit:
                return "554 5.6.1 8-bit data requires BODY=8BITMIME"
            tx.symbols.append(
                self.pipeline.rescored(
                    "SMTP_8BIT_UNDECLARED", FRONT_SPEC.score("SMTP_8BIT_UNDECLARED"), ""
                )
            )
        return ""

    async def _refuse_data(
        self, tx: Transaction, line: str, reason: str, decision: Decision | None = None
    ) -> None:
        self.reply(line)
        if self.upstream is not None:
            await self.upstream.rset()
        action = Action.SOFT_REJECT if line.startswith("4") else Action.REJECT
        await self._record(
            tx, decision, action=action.value, reason=reason, stage=Stage.DATA, reply=line
        )

    async def _deliver(self, tx: Transaction, decision: Decision) -> str:
        message = prepare(tx, decision, self.config)
        if decision.action is Action.QUARANTINE:
            if self.upstream is not None:
                await self.upstream.rset()
            return await self.gw.quarantine_message(tx, message)
        if decision.action is Action.DISCARD:
            if self.upstream is not None:
                await self.upstream.rset()
            return f"250 2.0.0 Ok: queued as {tx.queue_id}"
        if self.gw.upstream_address is None:
            return await self.gw.deliver_local(tx, message)
        if self.upstream is None:
            return "451 4.4.1 Upstream mail server unavailable, try again later"
        try:
            reply = await self.upstream.data(message)
        except UpstreamError as exc:
            log.warning("queue_id=%s upstream: %s", tx.queue_id, exc.detail)
            self.upstream.close()
            self.upstream = None
            return exc.reply.lines()
        return reply.lines()


def _declared_size(options: list[str]) -> int:
    for option in options:
        if option.startswith("SIZE="):
            return int(option[5:])
    return 0


def _address_encoding_problem(address: str, options: list[str]) -> str:
    """The 553 for an address that is not valid UTF-8 (the command was
    decoded with surrogate escapes), or non-ASCII without SMTPUTF8."""
    if address.isascii():
        return ""
    try:
        address.encode("utf-8")
    except UnicodeEncodeError:
        return "553 5.6.7 Address is not valid UTF-8"
    if "SMTPUTF8" not in options:
        return "553 5.6.7 Non-ASCII address requires SMTPUTF8"
    return ""


def _split_path(rest: str) -> tuple[str, list[str]]:
    """``" <a@b> SIZE=1"`` -> ``("<a@b>", ["SIZE=1"])``."""
    rest = rest.strip()
    if not rest:
        return "", []
    if rest.startswith("<"):
        end = rest.find(">")
        if end < 0:
            return rest, []
        return rest[: end + 1], rest[end + 1 :].split()
    head, *params = rest.split()
    return head if head else "", params
