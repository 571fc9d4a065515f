"""The before-queue leg: one SMTP session to the mail server behind us.

Contract: an ``UpstreamSession`` is opened lazily for the first recipient
that passes our checks; ``begin`` sends XFORWARD (when offered), MAIL and
that first RCPT, then each further RCPT and DATA go upstream in lockstep
with the client, and the upstream's replies come back as ``Reply`` values
for the front to mirror. Anything that is not an SMTP reply from the
upstream (refused connection, timeout, dropped connection, garbage) raises
``UpstreamError`` carrying the 451 4.4.x reply the client must get: never a
``250`` for a message the upstream has not accepted.

A connection serves one client after another (the gateway pools them), so
the session knows its own state: ``in_transaction`` from the first command of
a transaction (XFORWARD or MAIL) until the upstream answered the end of data
or an RSET, and whether a command is still waiting for its reply. Only a
``reusable`` connection (open, between transactions, nothing in flight) may
serve the next transaction; ``settle()`` gets it there with RSET or closes it.
With PIPELINING offered, ``rset()`` costs no round trip of its own: the RSET
leads the next group sent (RFC 2920 lets it stand anywhere in one), before
XFORWARD and MAIL, and a refused RSET there closes the connection and raises
``UpstreamError`` before any other reply of that group is believed.

Why a client of our own rather than aiosmtplib: this leg is the gateway's
hot path, and aiosmtplib cannot pipeline (RFC 2920): it keeps one reply per
written command and drops what arrives beyond it. With PIPELINING offered,
XFORWARD, MAIL and the first RCPT go out in one write and one round trip
instead of three; with CHUNKING offered, the message goes as one BDAT.
The framing is ``wire.connection.Connection``, the same reader
the server side uses (bounded lines, end-of-input handling).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from dataclasses import dataclass

from mailmoat.config import Config, parse_hostport
from mailmoat.wire.connection import Connection, LineTooLong
from mailmoat.wire.content import stuff

log = logging.getLogger("mailmoat.upstream")

# An XFORWARD value with a space or a control character is not sent (it
# would split the attribute or the command line).
_XFORWARD_UNSAFE = re.compile("[\x00-\x20\x7f]")
# RFC 5321 4.5.3.1.5: a reply line is at most 512 octets; be tolerant.
MAX_REPLY_LINE = 4096
MAX_REPLY_LINES = 200


@dataclass(frozen=True, slots=True)
class Reply:
    code: int
    text: str

    @property
    def ok(self) -> bool:
        return 200 <= self.code < 300

    def lines(self) -> str:
        """The reply as we send it on: every line with its code."""
        parts = self.text.splitlines() or [""]
        body = [f"{self.code}-{p}" for p in parts[:-1]]
        body.append(f"{self.code} {parts[-1]}")
        return "\r\n".join(body)


class UpstreamError(Exception):
    def __init__(self, reply: Reply, detail: str) -> None:
        super().__init__(detail)
        self.reply = reply
        self.detail = detail


UNREACHABLE = Reply(451, "4.4.1 Upstream mail server unavailable, try again later")
TIMED_OUT = Reply(451, "4.4.2 Upstream mail server timed out, try again later")
LOST = Reply(451, "4.4.2 Upstream connection lost, try again later")


@dataclass(frozen=True)
class ClientFacts:
    """What the upstream is told about the real client (XFORWARD)."""

    addr: str
    name: str
    helo: str


class UpstreamSession:
    def __init__(
        self,
        host: str,
        port: int,
        helo_name: str,
        *,
        connect_timeout: float,
        command_timeout: float,
        data_timeout: float,
    ) -> None:
        self.host = host
        self.port = port
        self.helo_name = helo_name
        self.connect_timeout = connect_timeout
        self.command_timeout = command_timeout
        self.data_timeout = data_timeout
        self._conn: Connection | None = None
        # EHLO keywords (lower case) and their parameters.
        self.extensions: dict[str, str] = {}
        # XFORWARD or MAIL sent, and neither the end of data nor an RSET
        # answered since: the upstream holds this client's transaction.
        self.in_transaction = False
        # Commands written whose replies have not all been read (an exchange
        # cut short by cancellation): the next reply read would be stale.
        self._awaiting_replies = False
        # An RSET owed to the upstream, sent in front of the next commands.
        self._reset_pending = False
        # The gateway's config generation this connection was opened under.
        self.generation = 0
        self._last_xforward: tuple[ClientFacts, bytes] | None = None

    @property
    def connected(self) -> bool:
        """Open, and with nothing unasked for waiting (a server that talks
        out of turn, say a 421 before closing, is not reused)."""
        conn = self._conn
        return conn is not None and conn.is_open and conn.pending() == 0

    @property
    def reusable(self) -> bool:
        """Fit to start a new transaction: open, between transactions, and
        with no reply outstanding."""
        return self.connected and not self.in_transaction and not self._awaiting_replies

    async def settle(self) -> bool:
        """Bring the connection back between transactions (RSET when one is
        open upstream); close it when that cannot be done. True when it is
        ``reusable`` afterwards."""
        if self.in_transaction and not self._awaiting_replies:
            await self.rset()
        if not self.reusable:
            self.close()
            return False
        return True

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout):
                _transport, conn = await loop.create_connection(
                    lambda: Connection(lambda _conn: None, hold_replies=False), self.host, self.port
                )
        except TimeoutError as exc:
            raise UpstreamError(TIMED_OUT, "upstream connect timeout") from exc
        except OSError as exc:
            raise UpstreamError(UNREACHABLE, f"upstream connect failed: {exc}") from exc
        self._conn = conn
        greeting = (await self._exchange([], self.connect_timeout, "greeting"))[0]
        if greeting.code != 220:
            self.close()
            raise UpstreamError(UNREACHABLE, f"upstream greeting: {greeting.code} {greeting.text}")
        reply = await self.command(b"EHLO", self.helo_name.encode("utf-8", "surrogateescape"))
        if reply.code != 250:
            self.close()
            raise UpstreamError(UNREACHABLE, f"upstream EHLO: {reply.code} {reply.text}")
        for line in reply.text.splitlines()[1:]:
            keyword, _, params = line.strip().partition(" ")
            self.extensions[keyword.lower()] = params

    async def _exchange(self, commands: list[bytes], timeout: float, what: str) -> list[Reply]:
        """Write ``commands`` in one go and read one reply for each (or the
        greeting when there are none)."""
        conn = self._conn
        if conn is None or not conn.is_open:
            self.close()
            raise UpstreamError(LOST, f"upstream connection lost before {what}")
        reset = self._reset_pending and bool(commands)
        if reset:
            self._reset_pending = False
            commands = [_RSET, *commands]
        if commands:
            conn.write(commands[0] if len(commands) == 1 else b"".join(commands))
        self._awaiting_replies = True
        try:
            replies = await self._read_replies(conn, len(commands) or 1, what, timeout)
        except TimeoutError as exc:
            self.close()
            raise UpstreamError(TIMED_OUT, f"upstream timeout on {what}") from exc
        self._awaiting_replies = False
        if reset:
            answer = replies.pop(0)
            if not answer.ok:
                self.close()
                detail = f"upstream refused RSET before {what}: {answer.code} {answer.text}"
                raise UpstreamError(LOST, detail)
        return replies

    async def _read_replies(
        self, conn: Connection, count: int, what: str, timeout: float
    ) -> list[Reply]:
        """``count`` replies, parsed from what is buffered; the connection is
        waited on only when a reply is incomplete."""
        replies: list[Reply] = []
        texts: list[str] = []
        deadline: float | None = None
        while True:
            try:
                line = conn.take_line(MAX_REPLY_LINE)
            except LineTooLong:
                self.close()
                raise UpstreamError(LOST, f"upstream reply line to {what} too long") from None
            if line is None:
                if not conn.is_open:  # closed: no more input will come
                    self.close()
                    raise UpstreamError(LOST, f"upstream closed the connection on {what}")
                if deadline is None:
                    deadline = conn.time() + timeout
                await conn.wait_for_more(deadline)
                continue
            code = line[:3]
            mark = line[3:4]
            if not code.isdigit() or code[:1] not in b"2345" or mark not in b" -\r\n":
                self.close()
                shown = line[:60].decode("ascii", "backslashreplace")
                raise UpstreamError(LOST, f"upstream sent garbage on {what}: {shown}")
            texts.append(line[4:].strip(b" \t\r\n").decode("utf-8", "surrogateescape"))
            if mark == b"-":
                if len(texts) >= MAX_REPLY_LINES:
                    self.close()
                    raise UpstreamError(LOST, f"upstream reply to {what} too long")
                continue
            replies.append(Reply(int(code), texts[0] if len(texts) == 1 else "\n".join(texts)))
            if len(replies) == count:
                return replies
            texts = []

    async def command(self, *args: bytes, timeout: float | None = None) -> Reply:
        line = b" ".join(args)
        return (
            await self._exchange(
                [_command_line(line)], timeout or self.command_timeout, _name(line)
            )
        )[0]

    async def begin(
        self, sender: str, options: list[str], client: ClientFacts, rcpt: str | None = None
    ) -> tuple[Reply, Reply | None]:
        """XFORWARD (when offered: a pooled connection serves many clients,
        so their facts go per transaction), MAIL FROM and, when given, the
        first RCPT TO: in one round trip when the upstream offers PIPELINING.
        Returns the MAIL reply and the RCPT reply (None when MAIL failed or
        no recipient was given). A non-ASCII address for an upstream that
        does not offer SMTPUTF8 is refused here with 553 5.6.7 (RFC 6531
        3.2), nothing sent."""
        if refusal := self._utf8_refusal(sender, rcpt or ""):
            return refusal, None
        supported = [o.encode() for o in options if self._passes(o)]
        path = f"FROM:<{sender}>".encode("utf-8", "surrogateescape")
        mail = _command_line(b" ".join([b"MAIL", path, *supported]))
        xforward = self._xforward_line(client)
        commands = [*([xforward] if xforward else []), mail]
        if rcpt is not None:
            commands.append(_command_line(_rcpt_line(rcpt)))
        self.in_transaction = True
        if "pipelining" in self.extensions:
            replies = await self._exchange(commands, self.command_timeout, "MAIL")
        else:
            replies = []
            for command in commands:
                replies += await self._exchange([command], self.command_timeout, _name(command))
                if command is mail and not replies[-1].ok:
                    break  # no RCPT after a refused MAIL
        if xforward:
            forwarded = replies.pop(0)
            if not forwarded.ok:
                log.warning("upstream refused XFORWARD: %s %s", forwarded.code, forwarded.text)
        mail_reply = replies[0]
        rcpt_reply = replies[1] if rcpt is not None and mail_reply.ok else None
        return mail_reply, rcpt_reply

    async def mail(self, sender: str, options: list[str], client: ClientFacts) -> Reply:
        return (await self.begin(sender, options, client))[0]

    def _xforward_line(self, client: ClientFacts) -> bytes:
        """The XFORWARD command for ``client`` (the last one is remembered:
        a pooled connection often serves the same client again)."""
        last = self._last_xforward
        if last is not None and last[0] == client:
            return last[1]
        line = self._make_xforward_line(client)
        self._last_xforward = (client, line)
        return line

    def _make_xforward_line(self, client: ClientFacts) -> bytes:
        names = self.extensions.get("xforward", "").upper().split()
        values = {"ADDR": client.addr, "NAME": client.name or "[UNAVAILABLE]", "HELO": client.helo}
        args = [
            f"{k}={v}"
            for k, v in values.items()
            if k in names and v and not _XFORWARD_UNSAFE.search(v)
        ]
        line = ("XFORWARD " + " ".join(args)).encode("utf-8", "surrogateescape")
        return _command_line(line) if args else b""

    def _passes(self, option: str) -> bool:
        keyword = option.split("=", 1)[0].upper()
        wanted = {"SIZE": "size", "BODY": "8bitmime", "SMTPUTF8": "smtputf8"}.get(keyword)
        return wanted is not None and wanted in self.extensions

    def _utf8_refusal(self, *addresses: str) -> Reply | None:
        if "smtputf8" in self.extensions or all(a.isascii() for a in addresses):
            return None
        return Reply(553, "5.6.7 Upstream does not accept non-ASCII addresses (no SMTPUTF8)")

    async def rcpt(self, recipient: str) -> Reply:
        if refusal := self._utf8_refusal(recipient):
            return refusal
        return (
            await self._exchange(
                [_command_line(_rcpt_line(recipient))], self.command_timeout, "RCPT"
            )
        )[0]

    async def data(self, message: bytes) -> Reply:
        """Send a CRLF-normalized message; dot-stuffing happens here.

        A refused DATA command leaves the transaction open upstream, so it is
        reset here (or the connection closed) before the refusal is returned.
        When the upstream offers CHUNKING (RFC 3030), the message goes as one
        ``BDAT <size> LAST`` instead: no dot-stuffing, one round trip instead
        of two (DATA, 354, message); a refused BDAT is followed by RSET."""
        if "chunking" in self.extensions:
            return await self._bdat(message)
        start = (await self._exchange([b"DATA\r\n"], self.command_timeout, "DATA"))[0]
        if start.code != 354:
            await self.rset()
            return start
        wire = stuff(message)
        end_of_data = b".\r\n" if wire.endswith(b"\r\n") else b"\r\n.\r\n"
        end = (await self._exchange([wire + end_of_data], self.data_timeout, "end of data"))[0]
        self.in_transaction = False  # whatever the verdict, the transaction is over
        return end

    async def _bdat(self, message: bytes) -> Reply:
        if not message.endswith(b"\r\n"):
            message += b"\r\n"  # as the DATA path ends it
        command = b"BDAT %d LAST\r\n" % len(message)
        end = (await self._exchange([command + message], self.data_timeout, "BDAT"))[0]
        if end.ok:
            self.in_transaction = False
        else:
            await self.rset()  # RFC 3030 leaves the state after a refusal open
        return end

    async def rset(self) -> None:
        """End any transaction upstream (with PIPELINING: the RSET is owed and
        leads the next group sent); a connection that cannot is closed."""
        if not self.in_transaction:
            return
        if not self.connected or self._awaiting_replies:
            self.close()
            return
        if "pipelining" in self.extensions:
            self._reset_pending = True  # leads the next group sent
            self.in_transaction = False
            return
        try:
            reply = await self.command(b"RSET")
        except UpstreamError:
            return  # already closed
        if reply.ok:
            self.in_transaction = False
        else:
            self.close()

    async def quit(self) -> None:
        self._reset_pending = False  # QUIT ends any transaction as well
        if not self.connected or self._awaiting_replies:
            self.close()
            return
        with contextlib.suppress(UpstreamError):
            await self.command(b"QUIT")
        self.close()

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


_RSET = b"RSET\r\n"


def _rcpt_line(recipient: str) -> bytes:
    return f"RCPT TO:<{recipient}>".encode("utf-8", "surrogateescape")


def _command_line(line: bytes) -> bytes:
    """``line`` with its CRLF; a CR or LF inside would smuggle a command."""
    if b"\r" in line or b"\n" in line:
        raise UpstreamError(Reply(501, "5.5.4 Invalid character in command"), "CR/LF in command")
    return line + b"\r\n"


def _name(line: bytes) -> str:
    return line.split(b" ", 1)[0].decode("ascii", "replace").upper()


def upstream_from_config(config: Config) -> UpstreamSession:
    """A (not yet opened) session to ``relay.upstream`` with its timeouts."""
    relay = config.relay
    host, port = parse_hostport(relay.upstream)
    return UpstreamSession(
        host,
        port,
        config.smtp.hostname,
        connect_timeout=relay.connect_timeout,
        command_timeout=relay.command_timeout,
        data_timeout=relay.data_timeout,
    )
