"""One SMTP dialogue with one client: the state machine of the front.

Contract: ``SmtpSession.run()`` speaks RFC 5321 with the client until QUIT,
disconnect, timeout or shutdown, asks the pipeline for a decision at each
stage and turns it into replies; it holds no policy of its own beyond
protocol correctness and relay control. Every reply carries an enhanced
status code. A client gets ``250`` at end of DATA only after the upstream
(before-queue) or the Maildir/quarantine (embedded) holds the message.
Exceptions inside one command become ``451 4.3.0`` for that command, never a
dead server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING

from mailmoat.core.record import TransactionRecord
from mailmoat.core.relay import AddressError, parse_path, relay_allowed
from mailmoat.core.scoring import Decision
from mailmoat.core.symbols import Action, Forced, Precedence, Stage
from mailmoat.core.transaction import Session, Transaction
from mailmoat.smtp import content, xforward
from mailmoat.smtp.outcome import prepare
from mailmoat.smtp.upstream import ClientFacts, Reply, UpstreamError, UpstreamSession
from mailmoat.smtp.wire import Connection, LineTooLong
from mailmoat.store.base import StoreError

if TYPE_CHECKING:
    from mailmoat.smtp.server import Gateway

log = logging.getLogger("mailmoat.smtp")

_NON_SMTP = frozenset({"GET", "POST", "HEAD", "PUT", "CONNECT", "OPTIONS", "USER", "PASS"})
_NOT_OFFERED = frozenset({"AUTH", "BDAT", "ETRN", "TURN", "ATRN", "XCLIENT"})


class Hangup(Exception):
    """Stop the dialogue after the reply already sent."""


class SmtpSession:
    def __init__(self, gateway: Gateway, conn: Connection) -> None:
        self.gw = gateway
        self.conn = conn
        self.config = gateway.config
        self.pipeline = gateway.pipeline
        self.session = Session(client_ip=conn.peer[0], client_port=conn.peer[1])
        self.tx: Transaction | None = None
        self.upstream: UpstreamSession | None = None
        self.errors = 0
        self.pipelining_offered = False
        self.in_data = False
        self.closing = False
        self.xforward_offered = xforward.is_trusted(conn.peer[0], gateway.xforward_networks)
        self.forwarded: dict[str, str] = {}

    # -- plumbing -----------------------------------------------------------

    @property
    def idle(self) -> bool:
        """Between transactions: nothing would be lost by hanging up now."""
        return self.tx is None and not self.in_data

    def hangup(self, line: str) -> None:
        self.reply(line)
        self.closing = True
        self.conn.close()

    def reply(self, line: str) -> None:
        if line[:1] in "45":
            self.errors += 1
        self.conn.write(line.encode("utf-8", "replace") + b"\r\n")

    def _new_tx(self) -> Transaction:
        return Transaction(self.session)

    async def _record(
        self,
        tx: Transaction,
        decision: Decision | None,
        *,
        action: str,
        reason: str,
        stage: Stage,
        reply: str,
        rcpts: tuple[str, ...] | None = None,
    ) -> None:
        headers = content.parse_header_block(tx.data) if tx.data else None
        record = TransactionRecord(
            queue_id=tx.queue_id,
            client_ip=tx.session.client_ip,
            client_rdns=tx.session.client_rdns,
            helo=tx.session.helo,
            mail_from=tx.mail_from,
            rcpts=tuple(tx.rcpts) if rcpts is None else rcpts,
            action=action,
            reason=reason,
            score=decision.score if decision else tx.score,
            symbols=tuple(tx.all_symbols),
            size=len(tx.data),
            subject=content.decoded(headers.get("Subject"))[:500] if headers else "",
            message_id=str(headers.get("Message-ID", ""))[:500] if headers else "",
            stage=stage.value,
            reply=reply,
            duration=time.time() - tx.started,
            front=tx.session.front,
            node=self.gw.node,
        )
        await self.pipeline.finish(record)

    # -- the dialogue -------------------------------------------------------

    async def run(self) -> None:
        try:
            if await self._open():
                await self._loop()
        except Hangup:
            pass
        except (ConnectionError, EOFError):
            log.info("client=%s disconnected", self.session.client_ip)
        except asyncio.CancelledError:
            if self.in_data:
                self.reply("451 4.3.2 Service shutting down, try again later")
            raise
        finally:
            await self._close_upstream()
            self.conn.close()
            await self._end_tx()
            await self._run_cleanups(self.session)

    async def _run_cleanups(self, session: Session) -> None:
        for cleanup in session.cleanups:
            try:
                await cleanup()
            except StoreError as exc:
                log.warning("client=%s cleanup failed: %s", session.client_ip, exc)
            except Exception:
                log.exception("client=%s cleanup failed", session.client_ip)
        session.cleanups.clear()

    async def _end_tx(self) -> None:
        """Forget the transaction; a forwarded client's session ends with it."""
        tx, self.tx = self.tx, None
        if tx is not None and tx.session is not self.session:
            await self._run_cleanups(tx.session)

    async def _close_upstream(self) -> None:
        if self.upstream is not None:
            await self.upstream.quit()
            self.upstream = None

    async def _open(self) -> bool:
        scratch = self._new_tx()
        decision = await self.pipeline.run(Stage.CONNECT, scratch)
        if decision.is_final_refusal:
            line = decision.reply().replace("451", "421", 1).replace("550", "554", 1)
            self.reply(line)
            await self._record(
                scratch,
                decision,
                action=decision.action.value,
                reason=decision.reason,
                stage=Stage.CONNECT,
                reply=line,
            )
            return False
        if not await self._pregreet(scratch):
            return False
        self.reply(f"220 {self.config.smtp.hostname} {self.config.smtp.banner}")
        return True

    async def _pregreet(self, scratch: Transaction) -> bool:
        settings = self.config.pregreet
        if settings.delay <= 0 or self.session.allowlisted:
            return True
        store = self.gw.services.store
        key = f"pass:pregreet:{self.session.client_ip}"
        # Store down: no cached pass, so the client waits the delay (safe).
        try:
            if store is not None and await store.get(key) is not None:
                return True
        except StoreError as exc:
            log.warning("client=%s pregreet cache unavailable: %s", self.session.client_ip, exc)
            store = None
        try:
            await asyncio.wait_for(self.conn.wait_for_input(), settings.delay)
        except TimeoutError:
            if store is not None:
                with contextlib.suppress(StoreError):
                    await store.set(key, b"1", settings.pass_ttl)
            return True
        if self.conn.at_eof:
            return False
        return await self._violation(scratch, "pregreet", settings.action, "PREGREET")

    async def _violation(self, tx: Transaction, reason: str, action: str, symbol: str) -> bool:
        """Apply a protocol test's action; False when the client is dropped."""
        self.session.symbols.append(self.pipeline.rescored(symbol, 0.0, reason))
        if action == "ignore":
            return True
        if action == "drop":
            line = "521 5.5.1 Protocol error, goodbye"
            self.reply(line)
            await self._record(
                tx,
                None,
                action=Action.REJECT.value,
                reason=reason,
                stage=Stage.CONNECT,
                reply=line,
            )
            self.closing = True
            return False
        self.session.forced.append(
            Forced(Action.REJECT, Precedence.TEST, reason, 550, "5.5.1", "Protocol error")
        )
        return True

    async def _loop(self) -> None:
        limits = self.config.smtp
        while not self.closing:
            if self.errors >= self.config.protocol.hard_error_limit:
                self.reply("421 4.7.0 Too many errors, closing connection")
                return
            try:
                line = await asyncio.wait_for(
                    self.conn.readline(limits.max_command_length + 2), limits.command_timeout
                )
            except LineTooLong:
                self.reply("500 5.5.2 Line too long")
                continue
            except TimeoutError:
                self.reply("421 4.4.2 Timeout exceeded, closing connection")
                return
            if not line:
                return
            if self.gw.stopping:
                self.reply("421 4.3.2 Service shutting down, try again later")
                return
            await self._command(line)

    async def _command(self, line: bytes) -> None:
        scratch = self.tx or self._new_tx()
        if not line.endswith(b"\r\n"):
            action = self.config.protocol.bare_newline
            if not await self._violation(scratch, "protocol", action, "PROTOCOL_BARE_NEWLINE"):
                return
        text = line.rstrip(b"\r\n")
        if b"\x00" in text:
            self.reply("500 5.5.2 Syntax error: NUL byte in command")
            return
        verb_bytes, _, arg_bytes = text.partition(b" ")
        try:
            verb = verb_bytes.decode("ascii").upper()
        except UnicodeDecodeError:
            self.reply("500 5.5.2 Syntax error: bad command")
            return
        arg = arg_bytes.decode("utf-8", "surrogateescape").strip()
        if verb in _NON_SMTP or b"HTTP/1." in text:
            action = self.config.protocol.non_smtp_command
            if not await self._violation(scratch, "protocol", action, "PROTOCOL_NON_SMTP"):
                return
        if self.conn.pending() and not self.pipelining_offered and verb not in ("QUIT",):
            action = self.config.protocol.pipelining
            if not await self._violation(scratch, "protocol", action, "PROTOCOL_PIPELINING"):
                return
        handler = getattr(self, f"smtp_{verb}", None) if verb.isalpha() else None
        try:
            if handler is not None:
                await handler(arg)
            elif verb in _NOT_OFFERED:
                self.reply("502 5.5.1 Command not implemented")
            else:
                self.reply("500 5.5.1 Command unrecognized")
        except (Hangup, ConnectionError, EOFError, asyncio.CancelledError):
            raise
        except Exception:
            log.exception("client=%s command %s failed", self.session.client_ip, verb)
            self.reply("451 4.3.0 Internal error, try again later")
            await self._abort_tx()
        await self.conn.drain()

    async def _abort_tx(self) -> None:
        await self._end_tx()
        if self.upstream is not None:
            await self.upstream.rset()

    # -- commands -----------------------------------------------------------

    async def smtp_HELO(self, arg: str) -> None:
        await self._greet(arg, esmtp=False)

    async def smtp_EHLO(self, arg: str) -> None:
        await self._greet(arg, esmtp=True)

    async def _greet(self, arg: str, *, esmtp: bool) -> None:
        if not arg or " " in arg:
            self.reply(f"501 5.5.4 Syntax: {'EHLO' if esmtp else 'HELO'} hostname")
            return
        await self._abort_tx()
        first = not self.session.helo
        self.session.helo = arg
        self.session.esmtp = esmtp
        if first:
            decision = await self.pipeline.run(Stage.HELO, self._new_tx())
            if decision.is_final_refusal:
                await self._refuse(self._new_tx(), decision, Stage.HELO)
                return
        hostname = self.config.smtp.hostname
        if not esmtp:
            self.reply(f"250 {hostname}")
            return
        self.pipelining_offered = True
        lines = [
            hostname,
            "PIPELINING",
            f"SIZE {self.config.smtp.max_message_size}",
            "8BITMIME",
            "SMTPUTF8",
            "ENHANCEDSTATUSCODES",
        ]
        if self.gw.tls_context is not None and not self.session.tls:
            lines.append("STARTTLS")
        if self.xforward_offered:
            lines.append(xforward.OFFERED)
        self.reply("\r\n".join(f"250-{x}" for x in lines[:-1]) + f"\r\n250 {lines[-1]}")

    async def _refuse(self, tx: Transaction, decision: Decision, stage: Stage) -> None:
        line = decision.reply()
        if decision.code == 421:
            self.closing = True
        self.reply(line)
        await self._record(
            tx,
            decision,
            action=decision.action.value,
            reason=decision.reason,
            stage=stage,
            reply=line,
            rcpts=(tx.current_rcpt,) if tx.current_rcpt else (),
        )

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
        if not sender.isascii() and "SMTPUTF8" not in options:
            self.reply("553 5.6.7 Non-ASCII address requires SMTPUTF8")
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
        if not rcpt.isascii() and "SMTPUTF8" not in tx.mail_options:
            self.reply("553 5.6.7 Non-ASCII address requires SMTPUTF8")
            return
        if len(tx.rcpts) >= self.config.smtp.max_recipients:
            self.reply("452 4.5.3 Too many recipients")
            return
        tx.notes["rcpt_attempts"] = tx.notes.get("rcpt_attempts", 0) + 1
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

    async def _upstream_rcpt(self, tx: Transaction, rcpt: str) -> Reply:
        try:
            if not tx.notes.get("upstream_mail"):
                if self.upstream is None or not self.upstream.connected:
                    self.upstream = self.gw.new_upstream()
                    await self.upstream.open(
                        ClientFacts(tx.session.client_ip, tx.session.client_rdns, tx.session.helo)
                    )
                reply = await self.upstream.mail(tx.mail_from, tx.mail_options)
                if not reply.ok:
                    return reply
                tx.notes["upstream_mail"] = True
            assert self.upstream is not None
            return await self.upstream.rcpt(rcpt)
        except UpstreamError as exc:
            log.warning("queue_id=%s upstream: %s", tx.queue_id, exc.detail)
            tx.notes["upstream_mail"] = False
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
            if tx.notes.get("rcpt_attempts"):
                self.reply("554 5.5.1 Error: no valid recipients")
            else:
                self.reply("503 5.5.1 Error: need RCPT command")
            return
        self.reply("354 End data with <CR><LF>.<CR><LF>")
        self.in_data = True
        try:
            await self._data(tx)
        finally:
            self.in_data = False
            await self._end_tx()

    async def _data(self, tx: Transaction) -> None:
        limits = self.config.smtp
        payload, size = await asyncio.wait_for(
            self.conn.read_data(limits.max_message_size), limits.command_timeout
        )
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
            await self._refuse_data(
                tx, decision.reply().replace("550 5", "554 5", 1), decision.reason, decision
            )
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
            tx.symbols.append(self.pipeline.rescored("SMTP_8BIT_UNDECLARED", 0.5, ""))
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
            self.upstream = None
            return exc.reply.lines()
        return reply.lines()

    async def smtp_XFORWARD(self, arg: str) -> None:
        if not self.xforward_offered:
            self.reply("502 5.5.1 Command not implemented")
            return
        if self.tx is not None:
            self.reply("503 5.5.1 Error: MAIL transaction in progress")
            return
        try:
            self.forwarded.update(xforward.parse_xforward(arg))
        except ValueError as exc:
            self.reply(f"501 5.5.4 Syntax: XFORWARD attribute=value... ({exc})")
            return
        self.reply("250 2.0.0 Ok")

    async def smtp_RSET(self, arg: str) -> None:
        if arg:
            self.reply("501 5.5.4 Syntax: RSET")
            return
        await self._abort_tx()
        self.reply("250 2.0.0 Ok")

    async def smtp_NOOP(self, arg: str) -> None:
        self.reply("250 2.0.0 Ok")

    async def smtp_QUIT(self, arg: str) -> None:
        self.reply("221 2.0.0 Bye")
        self.closing = True

    async def smtp_VRFY(self, arg: str) -> None:
        if not arg:
            self.reply("501 5.5.4 Syntax: VRFY address")
            return
        self.reply("252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery")

    async def smtp_EXPN(self, arg: str) -> None:
        self.reply("502 5.5.1 EXPN not available")

    async def smtp_HELP(self, arg: str) -> None:
        self.reply("214 2.0.0 See RFC 5321")

    async def smtp_STARTTLS(self, arg: str) -> None:
        context = self.gw.tls_context
        if context is None:
            self.reply("502 5.5.1 STARTTLS not available")
            return
        if self.session.tls:
            self.reply("503 5.5.1 Error: TLS already active")
            return
        if arg:
            self.reply("501 5.5.4 Syntax: STARTTLS")
            return
        self.reply("220 2.0.0 Ready to start TLS")
        # Anything the client sent after STARTTLS in plaintext is an injection
        # attempt (CVE-2011-0411); it must not be read as encrypted commands.
        self.conn.discard_pending()
        transport = self.conn.transport
        assert transport is not None
        loop = asyncio.get_running_loop()
        try:
            new_transport = await asyncio.wait_for(
                loop.start_tls(transport, self.conn, context, server_side=True), 30
            )
        except (OSError, TimeoutError) as exc:
            log.info("client=%s TLS handshake failed: %s", self.session.client_ip, exc)
            raise Hangup() from exc
        self.conn.transport = new_transport  # type: ignore[assignment]
        await self._abort_tx()
        self.session.tls = True
        self.session.helo = ""
        self.pipelining_offered = False


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
