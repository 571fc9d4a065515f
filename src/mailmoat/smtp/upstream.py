"""The before-queue leg: one SMTP session to the mail server behind us.

Contract: an ``UpstreamSession`` is opened lazily for the first recipient
that passes our checks, then MAIL, each RCPT and DATA go upstream in lockstep
with the client and the upstream's replies come back as ``Reply`` values for
the front to mirror. Anything that is not an SMTP reply from the upstream
(refused connection, timeout, dropped connection, garbage) raises
``UpstreamError`` carrying the 451 4.4.x reply the client must get: never a
``250`` for a message the upstream has not accepted. Uses aiosmtplib's
low-level command API so that 4xx/5xx replies come back as values.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import aiosmtplib

from mailmoat.config import Config, parse_hostport
from mailmoat.smtp.content import stuff

log = logging.getLogger("mailmoat.upstream")


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
        self.command_timeout = command_timeout
        self.data_timeout = data_timeout
        self._smtp = aiosmtplib.SMTP(
            hostname=host,
            port=port,
            timeout=connect_timeout,
            local_hostname=helo_name,
            use_tls=False,
            start_tls=False,
        )
        self.extensions: set[str] = set()

    @property
    def connected(self) -> bool:
        return self._smtp.is_connected

    async def open(self) -> None:
        try:
            await self._smtp.connect()
            reply = await self._smtp.ehlo()
        except aiosmtplib.SMTPHeloError as exc:
            raise UpstreamError(UNREACHABLE, f"upstream refused EHLO: {exc}") from exc
        except aiosmtplib.SMTPTimeoutError as exc:
            raise UpstreamError(TIMED_OUT, f"upstream connect timeout: {exc}") from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise UpstreamError(UNREACHABLE, f"upstream connect failed: {exc}") from exc
        if reply.code != 250:
            raise UpstreamError(UNREACHABLE, f"upstream EHLO: {reply.code} {reply.message}")
        self.extensions = set(self._smtp.esmtp_extensions)

    async def _xforward(self, client: ClientFacts) -> None:
        names = self._smtp.esmtp_extensions.get("xforward", "").upper().split()
        values = {"ADDR": client.addr, "NAME": client.name or "[UNAVAILABLE]", "HELO": client.helo}
        args = [f"{k}={v}" for k, v in values.items() if k in names and v and " " not in v]
        if args:
            reply = await self.command(
                b"XFORWARD", *(a.encode("utf-8", "surrogateescape") for a in args)
            )
            if not reply.ok:
                log.warning("upstream refused XFORWARD: %s %s", reply.code, reply.text)

    async def command(self, *args: bytes, timeout: float | None = None) -> Reply:
        try:
            response = await self._smtp.execute_command(
                *args, timeout=timeout or self.command_timeout
            )
        except aiosmtplib.SMTPTimeoutError as exc:
            self._smtp.close()
            raise UpstreamError(TIMED_OUT, f"upstream timeout on {args[0]!r}") from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            self._smtp.close()
            raise UpstreamError(LOST, f"upstream failed on {args[0]!r}: {exc}") from exc
        return Reply(response.code, response.message)

    async def mail(self, sender: str, options: list[str], client: ClientFacts) -> Reply:
        """MAIL FROM, preceded by XFORWARD when the upstream offers it (a
        pooled connection serves many clients: their facts go per transaction)."""
        if "xforward" in self.extensions:
            await self._xforward(client)
        supported = [o for o in options if self._passes(o)]
        path = f"FROM:<{sender}>".encode("utf-8", "surrogateescape")
        return await self.command(b"MAIL", path, *(o.encode() for o in supported))

    def _passes(self, option: str) -> bool:
        keyword = option.split("=", 1)[0].upper()
        wanted = {"SIZE": "size", "BODY": "8bitmime", "SMTPUTF8": "smtputf8"}.get(keyword)
        return wanted is not None and wanted in self.extensions

    async def rcpt(self, recipient: str) -> Reply:
        return await self.command(b"RCPT", f"TO:<{recipient}>".encode("utf-8", "surrogateescape"))

    async def data(self, message: bytes) -> Reply:
        """Send a CRLF-normalized message; dot-stuffing happens here."""
        start = await self.command(b"DATA")
        if start.code != 354:
            return start
        wire = stuff(message)
        if not wire.endswith(b"\r\n"):
            wire += b"\r\n"
        # aiosmtplib's execute_data_command would re-run DATA; we write the
        # stuffed payload ourselves and read the final reply.
        protocol = self._smtp.protocol
        if protocol is None:
            raise UpstreamError(LOST, "upstream connection lost before message")
        try:
            protocol.write(wire + b".\r\n")
            response = await protocol.read_response(timeout=self.data_timeout)
        except aiosmtplib.SMTPTimeoutError as exc:
            self._smtp.close()
            raise UpstreamError(TIMED_OUT, "upstream timeout after end of data") from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            self._smtp.close()
            raise UpstreamError(LOST, f"upstream failed during data: {exc}") from exc
        return Reply(response.code, response.message)

    async def rset(self) -> None:
        if not self.connected:
            return
        try:
            reply = await self.command(b"RSET")
        except UpstreamError:
            return
        if not reply.ok:
            self.close()

    async def quit(self) -> None:
        if not self.connected:
            return
        try:
            await self._smtp.quit(timeout=self.command_timeout)
        except (aiosmtplib.SMTPException, OSError):
            self.close()

    def close(self) -> None:
        self._smtp.close()


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
