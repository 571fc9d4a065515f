"""The SMTP protocol engine: one client's dialogue, from greeting to close.

Contract: ``SmtpProtocol.run()`` speaks RFC 5321 with the client until
QUIT, disconnect, timeout or shutdown. It reads command lines from the
``wire.connection.Connection`` (line length, timeouts), checks the grammar
(``smtp/grammar.py``) and the order of commands (HELO/EHLO before MAIL,
MAIL before RCPT, a recipient before DATA, no nested MAIL, STARTTLS and
XFORWARD rules), and asks its ``Handler`` (``smtp/handler.py``) what to do
with each well-formed step; every reply is an ``Answer``, a verdict's
through ``answers.reply_for``. It records what it sees a client do wrong
(talking before the greeting, bare LF, non-SMTP commands, pipelining
without PIPELINING, undeclared 8-bit data) as ``Finding`` facts on the
session and lets the handler score them; it scores nothing itself.
Errors (4xx/5xx) are counted; at ``protocol.hard_error_limit`` the client
hears ``421``. An exception inside one command becomes ``451 4.3.0`` for
that command, never a dead server. The message bytes of DATA are read
and vetted by ``smtp/transfer.py``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from mailmoat.config import Config
from mailmoat.core.findings import Finding
from mailmoat.core.transaction import Session
from mailmoat.smtp import answers, grammar, tls, transfer, xforward
from mailmoat.smtp.answers import GO, Answer, Kind, Step, Verdict, reply_for
from mailmoat.smtp.handler import Handler
from mailmoat.smtp.host import SessionHost
from mailmoat.wire.connection import Connection, LineTooLong

log = logging.getLogger("mailmoat.smtp")

_NON_SMTP = frozenset({"GET", "POST", "HEAD", "PUT", "CONNECT", "OPTIONS", "USER", "PASS"})
_NOT_OFFERED = frozenset({"AUTH", "BDAT", "ETRN", "TURN", "ATRN", "XCLIENT"})


class Hangup(Exception):
    """Stop the dialogue after the reply already said."""


class SmtpProtocol:
    def __init__(
        self, host: SessionHost, conn: Connection, session: Session, handler: Handler
    ) -> None:
        self.host = host
        self.config: Config = host.config
        self.conn = conn
        self.session = session
        self.handler = handler
        self.errors = 0
        self.closing = False
        # The client heard why it is cut off at shutdown (451 in DATA).
        self.shutdown_told = False
        self.pipelining_offered = False
        self.xforward_offered = xforward.is_trusted(conn.peer[0], host.xforward_networks)
        self.forwarded: dict[str, str] = {}
        self.envelope = transfer.CLOSED
        self.in_data = False

    # -- replies -------------------------------------------------------------

    @property
    def idle(self) -> bool:
        """Between transactions: nothing would be lost by hanging up now."""
        return not self.envelope.open and not self.in_data

    def hangup(self, answer: Answer) -> None:
        self.say(answer)
        self.closing = True
        self.conn.close()

    def say(self, answer: Answer, *, counted: bool = True) -> None:
        """Send ``answer``; a 4xx/5xx counts as an error unless not ``counted``."""
        if counted and answer.refusing:
            self.errors += 1
        self.conn.write(answer.wire)

    async def answer(self, verdict: Verdict, step: Step, accepted: Answer = answers.OK) -> Answer:
        """Say the reply to ``verdict``, then have its outcome recorded."""
        if verdict is GO:
            self.say(accepted)
            return accepted
        said = reply_for(verdict, step, accepted)
        if verdict.closes:
            self.closing = True
        self.say(said)
        if verdict.outcome is not None:
            await self.handler.record(verdict.outcome, said)
        return said

    async def found(self, finding: Finding) -> bool:
        """Record ``finding`` and have it scored; False when the client is dropped."""
        self.session.findings.append(finding)
        verdict = await self.handler.on_finding(finding)
        if verdict.kind is Kind.GO:
            return True
        await self.answer(verdict, Step.GREETING)
        self.closing = True
        return False

    async def reset(self) -> None:
        """Abort the transaction, here and in the handler."""
        self.envelope = transfer.CLOSED
        await self.handler.on_reset()

    # -- the dialogue ----------------------------------------------------------

    async def run(self) -> None:
        try:
            if await self._open():
                await self._loop()
        except Hangup:
            pass
        except (ConnectionError, EOFError):
            log.info("client=%s disconnected", self.session.client_ip)
        except asyncio.CancelledError:
            # Shutdown grace over: in DATA the client heard 451; anyone else
            # hears 421 before the close, never a silent one.
            if not self.shutdown_told and not self.closing:
                self.say(answers.SHUTTING_DOWN)
            raise
        finally:
            await self.handler.on_close()
            self.conn.close()

    async def _open(self) -> bool:
        verdict = await self.handler.on_connect()
        if verdict.kind is not Kind.GO:
            await self.answer(verdict, Step.GREETING)
            return False
        if not await self._pregreet():
            return False
        smtp = self.config.smtp
        self.say(answers.greeting(smtp.hostname, smtp.banner))
        return True

    async def _pregreet(self) -> bool:
        if self.config.pregreet.delay <= 0:
            return True
        delay = await self.handler.greeting_delay()
        if delay <= 0:
            return True
        try:
            await asyncio.wait_for(self.conn.wait_for_input(), delay)
        except TimeoutError:
            await self.handler.on_patient()
            return True
        if self.conn.at_eof:
            return False
        return await self.found(Finding.PREGREET)

    async def _loop(self) -> None:
        limits = self.config.smtp
        hard_limit = self.config.protocol.hard_error_limit
        while not self.closing:
            if self.errors >= hard_limit:
                self.say(answers.TOO_MANY_ERRORS)
                return
            deadline = self.conn.time() + limits.command_timeout
            try:
                line = await self.conn.readline(limits.max_command_length + 2, deadline)
            except LineTooLong:
                self.say(answers.LINE_TOO_LONG)
                continue
            except TimeoutError:
                self.say(answers.TIMEOUT)
                return
            if not line:
                return
            if self.host.stopping:
                self.say(answers.SHUTTING_DOWN)
                return
            await self._command(line)

    async def _command(self, line: bytes) -> None:
        if not line.endswith(b"\r\n") and not await self.found(Finding.BARE_NEWLINE):
            return
        text = line.rstrip(b"\r\n")
        parsed = grammar.split_command(text)
        if isinstance(parsed, Answer):
            self.say(parsed)
            return
        verb, arg = parsed
        if (verb in _NON_SMTP or b"HTTP/1." in text) and not await self.found(Finding.NON_SMTP):
            return
        if (
            self.conn.pending()
            and not self.pipelining_offered
            and verb != "QUIT"
            and not await self.found(Finding.PIPELINING)
        ):
            return
        command = _COMMANDS.get(verb)
        try:
            if command is not None:
                await command(self, arg)
            elif verb in _NOT_OFFERED:
                self.say(answers.NOT_IMPLEMENTED)
            else:
                self.say(answers.UNRECOGNIZED)
        except (Hangup, ConnectionError, EOFError, asyncio.CancelledError):
            raise
        except Exception:
            log.exception("client=%s command %s failed", self.session.client_ip, verb)
            self.say(answers.INTERNAL_ERROR)
            await self.reset()
        if self.conn.write_paused:
            await self.conn.drain()

    # -- session commands ----------------------------------------------------

    async def _helo(self, arg: str) -> None:
        await self._greet(arg, esmtp=False)

    async def _ehlo(self, arg: str) -> None:
        await self._greet(arg, esmtp=True)

    async def _greet(self, arg: str, *, esmtp: bool) -> None:
        problem = grammar.hostname_problem(arg, "EHLO" if esmtp else "HELO")
        if problem is not None:
            self.say(problem)
            return
        if self.envelope.open:
            await self.reset()
        self.session.helo = arg
        self.session.esmtp = esmtp
        verdict = await self.handler.on_helo(arg)
        if verdict.kind is not Kind.GO:
            await self.answer(verdict, Step.HELO)
            return
        hostname = self.config.smtp.hostname
        if not esmtp:
            self.say(answers.helo_reply(hostname))
            return
        self.pipelining_offered = True
        starttls = self.host.tls_context is not None and not self.session.tls
        self.say(
            answers.capabilities(
                hostname,
                self.config.smtp.max_message_size,
                starttls=starttls,
                xforward=self.xforward_offered,
            )
        )

    async def _xforward(self, arg: str) -> None:
        if not self.xforward_offered:
            self.say(answers.NOT_IMPLEMENTED)
            return
        if self.envelope.open:
            self.say(answers.IN_TRANSACTION)
            return
        try:
            self.forwarded.update(xforward.parse_xforward(arg))
        except ValueError as exc:
            self.say(answers.syntax(f"XFORWARD attribute=value... ({exc})"))
            return
        self.say(answers.OK)

    async def _rset(self, arg: str) -> None:
        if arg:
            self.say(answers.syntax("RSET"))
            return
        await self.reset()
        self.say(answers.OK)

    async def _noop(self, arg: str) -> None:
        self.say(answers.OK)

    async def _quit(self, arg: str) -> None:
        self.say(answers.BYE)
        self.closing = True

    async def _vrfy(self, arg: str) -> None:
        self.say(answers.CANNOT_VRFY if arg else answers.syntax("VRFY address"))

    async def _expn(self, arg: str) -> None:
        self.say(answers.EXPN_UNAVAILABLE)

    async def _help(self, arg: str) -> None:
        self.say(answers.HELP)

    async def _starttls(self, arg: str) -> None:
        context = self.host.tls_context
        if context is None:
            self.say(answers.STARTTLS_UNAVAILABLE)
            return
        if self.session.tls:
            self.say(answers.TLS_ACTIVE)
            return
        if arg:
            self.say(answers.syntax("STARTTLS"))
            return
        if tls.pipelined_after_starttls(self.conn, self.session.client_ip):
            self.say(answers.PIPELINED_AFTER_STARTTLS)
            raise Hangup()
        self.say(answers.START_TLS)
        if not await tls.upgrade(self.conn, context, self.session.client_ip):
            raise Hangup()
        await self.reset()
        self.session.tls = True
        self.session.helo = ""
        self.pipelining_offered = False

    # -- the mail transaction --------------------------------------------------

    async def _mail(self, arg: str) -> None:
        if not self.session.helo:
            self.say(answers.NEED_HELO)
            return
        if self.envelope.open:
            self.say(answers.NESTED_MAIL)
            return
        parsed = grammar.envelope_address(arg, sender=True)
        if isinstance(parsed, Answer):
            self.say(parsed)
            return
        sender, params = parsed
        options = grammar.mail_parameters(
            params, esmtp=self.session.esmtp, max_size=self.config.smtp.max_message_size
        )
        if isinstance(options, Answer):
            self.say(options)
            return
        if problem := grammar.address_encoding_problem(sender, options):
            self.say(problem)
            return
        if not self.host.inflight.fits(grammar.declared_size(options)):
            self.say(answers.INSUFFICIENT)
            return
        forwarded, self.forwarded = self.forwarded, {}
        verdict = await self.handler.on_mail(sender, options, forwarded)
        if verdict.kind is Kind.GO:
            self.envelope = transfer.Envelope(open=True, options=options)
        await self.answer(verdict, Step.MAIL, answers.SENDER_OK)

    async def _rcpt(self, arg: str) -> None:
        envelope = self.envelope
        if not envelope.open:
            self.say(answers.NEED_MAIL)
            return
        parsed = grammar.envelope_address(arg, sender=False)
        if isinstance(parsed, Answer):
            self.say(parsed)
            return
        rcpt = parsed[0]
        if problem := grammar.address_encoding_problem(rcpt, envelope.options):
            self.say(problem)
            return
        if envelope.accepted >= self.config.smtp.max_recipients:
            # Pipelining clients send all their recipients at once: the 452s
            # count as errors only past the overshoot limit, as in Postfix.
            envelope.overshoot += 1
            counted = envelope.overshoot > self.config.smtp.recipient_overshoot_limit
            self.say(answers.TOO_MANY_RECIPIENTS, counted=counted)
            return
        envelope.attempts += 1
        verdict = await self.handler.on_rcpt(rcpt)
        if verdict.kind is Kind.GO:
            envelope.accepted += 1
        await self.answer(verdict, Step.RCPT, answers.RECIPIENT_OK)

    async def _data(self, arg: str) -> None:
        envelope = self.envelope
        if not envelope.open:
            self.say(answers.NEED_MAIL)
            return
        if arg:
            self.say(answers.syntax("DATA"))
            return
        if not envelope.accepted:
            self.say(answers.NO_VALID_RECIPIENTS if envelope.attempts else answers.NEED_RCPT)
            return
        room = max(grammar.declared_size(envelope.options), transfer.DATA_ROOM)
        if not self.host.inflight.fits(room):
            self.say(answers.INSUFFICIENT)
            return
        self.say(answers.START_DATA)
        self.in_data = True
        hold = self.host.inflight.hold()
        try:
            received = await transfer.read_message(
                self.conn, self.config, envelope.options, hold.claim
            )
            if received.refusal is not None:
                verdict = await self.handler.on_message_refused(received.refusal, received.reason)
            else:
                if received.undeclared_8bit:
                    await self.found(Finding.UNDECLARED_8BIT)
                verdict = await self.handler.on_message(received.payload)
            await self.answer(verdict, Step.MESSAGE)
        except TimeoutError:
            self.say(answers.TIMEOUT_IN_DATA)
            raise Hangup() from None
        except asyncio.CancelledError:
            # Shutdown grace over: the client must not take the close for
            # a delivery (RFC 5321 4.1.1.4: only 250 means we have it).
            self.say(answers.SHUTTING_DOWN_IN_DATA)
            self.shutdown_told = True
            raise
        finally:
            hold.release()
            self.in_data = False
            self.envelope = transfer.CLOSED
            await self.handler.on_end()


# Verb -> command; kept off the instances (bound methods stored on an
# engine would make every connection a reference cycle, left to the
# garbage collector).
_COMMANDS: dict[str, Callable[[SmtpProtocol, str], Awaitable[None]]] = {
    "HELO": SmtpProtocol._helo,
    "EHLO": SmtpProtocol._ehlo,
    "MAIL": SmtpProtocol._mail,
    "RCPT": SmtpProtocol._rcpt,
    "DATA": SmtpProtocol._data,
    "RSET": SmtpProtocol._rset,
    "NOOP": SmtpProtocol._noop,
    "QUIT": SmtpProtocol._quit,
    "VRFY": SmtpProtocol._vrfy,
    "EXPN": SmtpProtocol._expn,
    "HELP": SmtpProtocol._help,
    "STARTTLS": SmtpProtocol._starttls,
    "XFORWARD": SmtpProtocol._xforward,
}
