"""The milter front: Postfix/Sendmail call the pipeline over the milter protocol.

Contract: ``MilterServer`` listens on ``[milter] listen`` and runs one
``MilterSession`` per MTA connection (one SMTP session, or several in a row
after QUIT_NC). Each session maps the milter steps onto pipeline stages
(CONNECT -> connect, HELO -> helo, MAIL -> mail, RCPT -> rcpt, end of body ->
data) with a ``Session``/``Transaction`` built as the SMTP front builds them
(``front = "milter"``) and turns each ``Decision`` into the milter answer:

- refusals (reject, soft_reject, forced verdicts) -> SMFIR_REPLYCODE with the
  decision's reply (a 5xx at end of data becomes 554 like the SMTP front);
- accept / add_header -> header edits, then ACCEPT; quarantine -> the same
  plus SMFIR_QUARANTINE (Postfix: hold queue), or with ``[milter] quarantine =
  "mailmoat"`` kept in mailmoat's quarantine and DISCARD (``milter.kept``);
  discard -> DISCARD.

Header edits at end of message: incoming X-Spam-* fields and the fields the
checks list in ``tx.removed_headers`` are deleted (SMFIR_CHGHEADER with an
empty value, highest index first), then ``tx.added_headers`` and the X-Spam
fields (``smtp.outcome.spam_fields``) are inserted on top (SMFIR_INSHEADER).
The MTA writes its own Received field; relay control is the MTA's job.

Bounds: a message's header fields are held in memory only up to
``milter.max_headers`` fields and ``milter.max_header_bytes`` bytes (body:
``smtp.max_message_size``, the excess is not scored); past a header bound the
fields are dropped and the message is refused with ``552 5.3.4`` at the next
step the MTA takes an answer for (a header when it waits for one, else the
body or end of message), recorded as a ``size`` refusal. At most
``milter.max_connections`` MTA connections run at once; more are closed at
once with a warning (``limits.ConnectionCap``), and Postfix then applies
``milter_default_action``.

Failure: an exception while handling a step answers TEMPFAIL for that step
(the MTA answers 451), logs it, and the session goes on. A protocol error
closes the connection; Postfix then applies ``milter_default_action``
(``tempfail`` by default: nothing is accepted unfiltered). One
``TransactionRecord`` per outcome reaches ``pipeline.finish``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from dataclasses import dataclass

from mailmoat.config import Config
from mailmoat.core.record import record_for
from mailmoat.core.replies import refusal_line
from mailmoat.core.scoring import Decision
from mailmoat.core.symbols import Action, Stage
from mailmoat.core.transaction import Session, Transaction
from mailmoat.fronts import FrontServer
from mailmoat.milter import codec
from mailmoat.milter.kept import keep
from mailmoat.milter.limits import HEADERS_TOO_BIG, ConnectionCap, headers_over
from mailmoat.pipeline import Pipeline
from mailmoat.runtime import Runtime
from mailmoat.smtp.outcome import SPAM_FIELDS, spam_fields
from mailmoat.wire import content

log = logging.getLogger("mailmoat.milter")

_NEWLINES = re.compile(r"\r\n|\r|\n")


@dataclass
class _Header:
    name: str
    value: str  # as sent by the MTA (leading space kept with HDR_LEADSPC)


class MilterSession:
    def __init__(
        self,
        runtime: Runtime,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.runtime = runtime
        self.config: Config = runtime.config
        self.reader = reader
        self.writer = writer
        self.protocol = 0  # negotiated SMFIP_* flags
        self.macros: dict[str, str] = {}
        self.session = Session(client_ip="", front="milter")
        self.tx: Transaction | None = None
        self.headers: list[_Header] = []
        self.body: list[bytes] = []
        self.body_size = 0
        self.truncated = False
        self.header_bytes = 0
        self.headers_over = False

    @property
    def pipeline(self) -> Pipeline:
        return self.runtime.pipeline

    # -- the loop -----------------------------------------------------------

    async def run(self) -> None:
        peer = self.writer.get_extra_info("peername")
        try:
            while True:
                packet = await asyncio.wait_for(
                    codec.read_packet(self.reader), self.config.milter.timeout
                )
                if packet is None or packet.command == codec.QUIT:
                    return
                answer = await self._step(packet)
                if answer:
                    self.writer.write(answer)
                    await self.writer.drain()
        except codec.ProtocolError as exc:
            log.warning("mta=%s milter protocol error: %s", peer, exc)
        except TimeoutError:
            log.info("mta=%s idle past %gs, closing", peer, self.config.milter.timeout)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()

    async def _step(self, packet: codec.Packet) -> bytes:
        command = packet.command
        if command == codec.OPTNEG:
            offered = codec.parse_optneg(packet.data)
            self.protocol = offered.protocol & codec.WANTED_PROTOCOL
            return codec.reply_optneg(offered)
        if command == codec.MACRO:
            _for, macros = codec.parse_macros(packet.data)
            self.macros.update(macros)
            return b""
        if command == codec.ABORT:
            self._reset_tx()
            return b""
        if command == codec.QUIT_NC:
            self._reset_tx()
            self.session = Session(client_ip="", front="milter")
            self.macros = {}
            return b""
        if command == codec.HEADER:
            self._add_header(packet.data)
            if self.protocol & codec.SMFIP_NR_HDR:
                return b""
            return await self._refuse_headers() if self.headers_over else _CONTINUE
        if command == codec.EOH:
            if self.protocol & codec.SMFIP_NR_EOH:
                return b""
            return await self._refuse_headers() if self.headers_over else _CONTINUE
        if command == codec.BODY:
            if self.headers_over:
                return await self._refuse_headers()
            self._add_body(packet.data)
            return _CONTINUE
        if command == codec.BODYEOB and self.headers_over:
            return await self._refuse_headers()
        try:
            return await self._stage_step(command, packet.data)
        except codec.ProtocolError:
            raise
        except Exception:
            log.exception("client=%s milter step %r failed", self.session.client_ip, command)
            return codec.reply(codec.TEMPFAIL)

    async def _stage_step(self, command: bytes, data: bytes) -> bytes:
        if command == codec.CONNECT:
            return await self._connect(codec.parse_connect(data))
        if command == codec.HELO:
            return await self._helo(codec.strings(data)[0] if data else "")
        if command == codec.MAIL:
            return await self._mail(*codec.parse_address(data))
        if command == codec.RCPT:
            return await self._rcpt(codec.parse_address(data)[0])
        if command == codec.BODYEOB:
            if data:
                self._add_body(data)
            return await self._end_of_message()
        # DATA, UNKNOWN and anything newer: nothing to decide here.
        return _CONTINUE

    # -- stages -------------------------------------------------------------

    async def _connect(self, info: codec.Connect) -> bytes:
        rdns = info.hostname
        if rdns.startswith("[") or rdns == "unknown":
            rdns = ""
        address = info.address or "0.0.0.0"
        self.session = Session(
            client_ip=address, client_port=info.port, client_rdns=rdns, front="milter"
        )
        recorder = self.runtime.recorder
        if recorder is not None:
            recorder.count_connection()  # the SMTP client's connection to the MTA
        return await self._decide(Stage.CONNECT, Transaction(self.session))

    async def _helo(self, helo: str) -> bytes:
        first = not self.session.helo
        self.session.helo = helo
        self.session.esmtp = True
        if not first:
            return _CONTINUE
        return await self._decide(Stage.HELO, Transaction(self.session))

    async def _mail(self, sender: str, params: list[str]) -> bytes:
        self._reset_tx()
        tx = Transaction(self.session, mail_from=sender, mail_options=params)
        if "i" in self.macros:
            tx.mta_queue_id = self.macros["i"]
        answer = await self._decide(Stage.MAIL, tx)
        if answer == _CONTINUE:
            self.tx = tx
        return answer

    async def _rcpt(self, rcpt: str) -> bytes:
        tx = self.tx
        if tx is None:
            return _CONTINUE
        tx.rcpt_attempts += 1
        tx.current_rcpt = rcpt
        answer = await self._decide(Stage.RCPT, tx, rcpts=(rcpt,))
        if answer == _CONTINUE:
            tx.rcpts.append(rcpt)
        tx.current_rcpt = ""
        return answer

    async def _decide(
        self, stage: Stage, tx: Transaction, rcpts: tuple[str, ...] | None = None
    ) -> bytes:
        decision = await self.pipeline.run(stage, tx)
        if not decision.is_final_refusal:
            return _CONTINUE
        line = refusal_line(decision, stage)
        await self._finish(tx, decision, stage, line, rcpts=rcpts)
        return codec.reply_code(line)

    async def _end_of_message(self) -> bytes:
        tx = self.tx
        if tx is None:
            return codec.reply(codec.ACCEPT)
        if "i" in self.macros:
            tx.mta_queue_id = self.macros["i"]
        tx.data = self._message_bytes()
        decision = await self.pipeline.run(Stage.DATA, tx)
        if decision.is_final_refusal:
            line = refusal_line(decision, Stage.DATA)
            await self._finish(tx, decision, Stage.DATA, line)
            self._reset_tx()
            return codec.reply_code(line)
        if decision.action is Action.DISCARD:
            await self._finish(tx, decision, Stage.DATA, "discarded")
            self._reset_tx()
            return codec.reply(codec.DISCARD)
        answer = self._header_edits(tx, decision)
        reply = "250 accepted by milter"
        reason = decision.reason
        if decision.action is Action.QUARANTINE and self.config.milter.quarantine == "mailmoat":
            kept = await keep(self.config, tx, decision)  # mailmoat.milter.kept
            line = "250 quarantined by mailmoat" if kept else "451 4.3.0 Local storage failed"
            await self._finish(tx, decision, Stage.DATA, line, reason="quarantined")
            self._reset_tx()
            return codec.reply(codec.DISCARD if kept else codec.TEMPFAIL)
        if decision.action is Action.QUARANTINE:
            answer += codec.reply_quarantine(f"mailmoat score {decision.score:.2f}")
            reply, reason = "250 quarantined (hold)", "quarantined"
        await self._finish(tx, decision, Stage.DATA, reply, reason=reason)
        self._reset_tx()
        return answer + codec.reply(codec.ACCEPT)

    # -- helpers ------------------------------------------------------------

    def _header_edits(self, tx: Transaction, decision: Decision) -> bytes:
        removed = {(n.lower(), v) for n, v in tx.removed_headers}
        seen: dict[str, int] = {}
        deletions: list[bytes] = []
        for header in self.headers:
            lower = header.name.lower()
            seen[lower] = seen.get(lower, 0) + 1
            value = " ".join(_NEWLINES.sub(" ", header.value).split())
            if lower in SPAM_FIELDS or (lower, value) in removed:
                deletions.append(codec.reply_chgheader(seen[lower], header.name, ""))
        lead = " " if self.protocol & codec.SMFIP_HDR_LEADSPC else ""
        inserts = []
        for name, value in [*tx.added_headers, *spam_fields(tx, decision, self.config)]:
            folded = content.fold(name, value).split(":", 1)[1].lstrip(" ")
            inserts.append(codec.reply_insheader(0, name, lead + folded.replace("\r\n", "\n")))
        # Delete from the last occurrence back, so earlier indexes stay valid;
        # insert at the top in reverse, so the fields end up in list order.
        return b"".join([*reversed(deletions), *reversed(inserts)])

    def _add_header(self, data: bytes) -> None:
        """Keep one header field, unless the message is past a header bound
        (then every field is dropped and ``headers_over`` set)."""
        if self.headers_over:
            return
        name, value = codec.parse_header(data)
        self.header_bytes += len(data)
        if headers_over(self.config.milter, len(self.headers) + 1, self.header_bytes):
            log.warning(
                "client=%s milter: message header over the limit (%d fields, %d bytes); "
                "refusing it with 552",
                self.session.client_ip,
                len(self.headers) + 1,
                self.header_bytes,
            )
            self.headers_over = True
            self.headers = []
            return
        self.headers.append(_Header(name, value))

    async def _refuse_headers(self) -> bytes:
        """Refuse the current message for its header size (once recorded)."""
        tx = self.tx
        if tx is not None:
            record = record_for(
                tx,
                None,
                action=Action.REJECT.value,
                reason="size",
                stage=Stage.DATA,
                reply=HEADERS_TOO_BIG,
                node=self.runtime.node,
            )
            await self.pipeline.finish(record)
        self._reset_tx()
        return codec.reply_code(HEADERS_TOO_BIG)

    def _add_body(self, chunk: bytes) -> None:
        limit = self.config.smtp.max_message_size
        if self.body_size + len(chunk) > limit:
            chunk = chunk[: max(0, limit - self.body_size)]
            self.truncated = True
        self.body.append(chunk)
        self.body_size += len(chunk)

    def _message_bytes(self) -> bytes:
        lead = bool(self.protocol & codec.SMFIP_HDR_LEADSPC)
        lines = []
        for header in self.headers:
            value = header.value if lead else f" {header.value}"
            text = _NEWLINES.sub("\r\n", f"{header.name}:{value}")
            lines.append(text.encode("utf-8", "surrogateescape") + b"\r\n")
        message = b"".join(lines) + b"\r\n" + b"".join(self.body)
        return content.normalize_line_ends(message)

    async def _finish(
        self,
        tx: Transaction,
        decision: Decision,
        stage: Stage,
        reply: str,
        *,
        reason: str | None = None,
        rcpts: tuple[str, ...] | None = None,
    ) -> None:
        record = record_for(
            tx,
            decision,
            action=decision.action.value,
            reason=reason or decision.reason,
            stage=stage,
            reply=reply,
            node=self.runtime.node,
            rcpts=rcpts,
        )
        await self.pipeline.finish(record)

    def _reset_tx(self) -> None:
        self.tx = None
        self.headers = []
        self.body = []
        self.body_size = 0
        self.truncated = False
        self.header_bytes = 0
        self.headers_over = False


_CONTINUE = codec.reply(codec.CONTINUE)


class MilterServer(FrontServer):
    name = "milter"
    default_port = 8891
    stop_grace = 10.0

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime)
        self.cap = ConnectionCap()

    def listen(self) -> str:
        return self.runtime.config.milter.listen

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # ``sessions`` already holds this connection's task.
        open_now = len(self.sessions) - 1
        if not self.cap.admit(
            self.runtime.config.milter, open_now, writer.get_extra_info("peername")
        ):
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            return
        await MilterSession(self.runtime, reader, writer).run()
