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
import re

from mailmoat.core.replies import refusal_line
from mailmoat.core.symbols import Stage
from mailmoat.core.transaction import Transaction
from mailmoat.smtp import xforward
from mailmoat.smtp.dialogue import Hangup
from mailmoat.smtp.mail import MailCommands
from mailmoat.store.base import StoreError
from mailmoat.wire.connection import LineTooLong

log = logging.getLogger("mailmoat.smtp")

TLS_HANDSHAKE_SECONDS = 30.0
_CONTROL = re.compile("[\x00-\x1f\x7f]")
_NON_SMTP = frozenset({"GET", "POST", "HEAD", "PUT", "CONNECT", "OPTIONS", "USER", "PASS"})
_NOT_OFFERED = frozenset({"AUTH", "BDAT", "ETRN", "TURN", "ATRN", "XCLIENT"})


class SmtpSession(MailCommands):
    """The dialogue loop and the session-level commands."""

    async def run(self) -> None:
        try:
            if await self._open():
                await self._loop()
        except Hangup:
            pass
        except (ConnectionError, EOFError):
            log.info("client=%s disconnected", self.session.client_ip)
        except asyncio.CancelledError:
            # Shutdown grace over: in DATA smtp_DATA said 451; anyone else
            # hears 421 before the close, never a silent one.
            if not self.shutdown_told and not self.closing:
                self.reply("421 4.3.2 Service shutting down, try again later")
            raise
        finally:
            await self._close_upstream()
            self.conn.close()
            await self._end_tx()
            await self._run_cleanups(self.session)

    async def _open(self) -> bool:
        scratch = self._new_tx()
        decision = await self.pipeline.run(Stage.CONNECT, scratch)
        if decision.is_final_refusal:
            line = refusal_line(decision, Stage.CONNECT, instead_of_greeting=True)
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

    async def _loop(self) -> None:
        limits = self.config.smtp
        while not self.closing:
            if self.errors >= self.config.protocol.hard_error_limit:
                self.reply("421 4.7.0 Too many errors, closing connection")
                return
            deadline = asyncio.get_running_loop().time() + limits.command_timeout
            try:
                line = await self.conn.readline(limits.max_command_length + 2, deadline)
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
        if not line.endswith(b"\r\n"):
            action = self.config.protocol.bare_newline
            scratch = self.tx or self._new_tx()
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
            scratch = self.tx or self._new_tx()
            if not await self._violation(scratch, "protocol", action, "PROTOCOL_NON_SMTP"):
                return
        if self.conn.pending() and not self.pipelining_offered and verb not in ("QUIT",):
            action = self.config.protocol.pipelining
            scratch = self.tx or self._new_tx()
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

    async def smtp_HELO(self, arg: str) -> None:
        await self._greet(arg, esmtp=False)

    async def smtp_EHLO(self, arg: str) -> None:
        await self._greet(arg, esmtp=True)

    async def _greet(self, arg: str, *, esmtp: bool) -> None:
        if not arg or " " in arg:
            self.reply(f"501 5.5.4 Syntax: {'EHLO' if esmtp else 'HELO'} hostname")
            return
        if _CONTROL.search(arg):
            # A bare CR (or any control) would travel on in our Received and
            # Authentication-Results fields and in XFORWARD HELO.
            self.reply("501 5.5.2 Syntax: control character in hostname")
            return
        await self._abort_tx()
        self.session.helo = arg
        self.session.esmtp = esmtp
        if await self._judge_helo(arg):
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

    async def _judge_helo(self, name: str) -> bool:
        """Run the helo stage for a name not judged yet in this session;
        True when the client was refused.

        A session greets again after STARTTLS (and may at any time): the
        same name is not judged twice, and a new one adds only symbols the
        session does not hold yet, so no finding is ever counted twice (the
        second EHLO after STARTTLS used to double every helo-stage score)."""
        judged: set[str] = self.session.notes.setdefault("helo_judged", set())
        if name.lower() in judged:
            return False
        if len(judged) < 16:  # bounded; past it a name is judged each time
            judged.add(name.lower())
        held = len(self.session.symbols)
        decision = await self.pipeline.run(Stage.HELO, self._new_tx())
        seen = {symbol.name for symbol in self.session.symbols[:held]}
        fresh = []
        for symbol in self.session.symbols[held:]:
            if symbol.name not in seen:
                seen.add(symbol.name)
                fresh.append(symbol)
        self.session.symbols[held:] = fresh
        if decision.is_final_refusal:
            await self._refuse(self._new_tx(), decision, Stage.HELO)
            return True
        return False

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
        if self.conn.pending():
            # Input pipelined after STARTTLS was sent in plaintext before the
            # client could have seen our 220 (RFC 3207 forbids it): acted on
            # inside TLS it would be a command injection (CVE-2011-0411).
            log.info(
                "client=%s sent %d bytes after STARTTLS; refused",
                self.session.client_ip,
                self.conn.pending(),
            )
            self.conn.discard_pending()
            self.reply("554 5.5.1 Error: input pipelined after STARTTLS")
            raise Hangup()
        self.reply("220 2.0.0 Ready to start TLS")
        transport = self.conn.transport
        assert transport is not None
        loop = asyncio.get_running_loop()
        # start_tls is awaited here, not wrapped in a task (wait_for would
        # start it one loop iteration later): it takes the transport over
        # before this task yields, so the client's ClientHello, however
        # fast, reaches the TLS protocol and never the plaintext buffer.
        try:
            async with asyncio.timeout(TLS_HANDSHAKE_SECONDS):
                new_transport = await loop.start_tls(
                    transport, self.conn, context, server_side=True
                )
        except (OSError, TimeoutError) as exc:
            log.info("client=%s TLS handshake failed: %s", self.session.client_ip, exc)
            raise Hangup() from exc
        self.conn.transport = new_transport  # type: ignore[assignment]
        await self._abort_tx()
        self.session.tls = True
        self.session.helo = ""
        self.pipelining_offered = False
