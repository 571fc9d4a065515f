"""Byte-level SMTP input/output for one connection (an asyncio Protocol).

Why by hand rather than aiosmtpd's reader: the gateway must see what a
client sends *before* the banner (pregreet test) and *ahead of* its replies
(pipelining test) without consuming it, must find the end of DATA only at
``<CR><LF>.<CR><LF>`` while keeping bare ``<LF>`` and ``<CR>`` as data to
normalize or refuse by policy, and must bound memory per connection when
ten thousand bots connect. aiosmtpd's StreamReader-based loop offers none of
these hooks, so this module owns the buffer and the line framing.

Contract: ``readline`` returns one line including its ending (``b"\\n"``),
``b""`` at end of input, and raises ``LineTooLong`` (after skipping the rest
of that line) when a line exceeds the limit. ``read_data`` returns the DATA
payload up to and excluding the final ``.<CR><LF>`` line, still dot-stuffed,
or reports that it overflowed ``max_size`` (the payload is then discarded,
but the end is still found so the dialogue stays in step). Both take an
optional ``deadline`` (event loop time) and raise ``TimeoutError`` when it
passes first. One timer per connection serves every deadline: it is armed
once and re-armed only when it fires before the current deadline, so a
command costs no timer of its own.

Writing (RFC 2920 3.2, as Postfix's smtpd does): ``write`` sends at once
unless input is already buffered behind the command being answered (a
pipelining client's next commands); then the reply is held and goes out
with the next ones in one ``send``. Held output is flushed before the
connection waits for input (so a client never waits for a reply we hold
while we wait for it), at the end of input, by ``flush()`` and
``close()``, and once it exceeds 64 KiB; the first write (the greeting) and the first write after
``read_data`` (the reply to the end of data) always go out at once. With
``hold_replies=False`` (the upstream client's side) every write is sent
at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

_END = b"\r\n.\r\n"
_HIGH_WATER = 1 << 20
# Held replies past this size are sent without waiting for more.
_HOLD_LIMIT = 1 << 16


class LineTooLong(Exception):
    """A command line longer than allowed; the line has been skipped."""


class Connection(asyncio.Protocol):
    def __init__(
        self, on_ready: Callable[[Connection], None], *, hold_replies: bool = True
    ) -> None:
        self._on_ready = on_ready
        self._hold_replies = hold_replies
        # Output held back while pipelined input is waiting (see write).
        self._held: list[bytes] = []
        self._held_size = 0
        # The next write goes out at once: the greeting, the end-of-data reply.
        self._send_next = True
        self._loop: asyncio.AbstractEventLoop | None = None
        self.transport: asyncio.Transport | None = None
        self.peer: tuple[str, int] = ("", 0)
        self._buffer = bytearray()
        self._eof = False
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False
        self._write_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self._deadline: float | None = None
        self._timer: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol ---------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses; they
        # implement the same interface.
        self.transport = transport  # type: ignore[assignment]
        self._loop = asyncio.get_running_loop()
        peer = transport.get_extra_info("peername") or ("", 0)
        self.peer = (str(peer[0]), int(peer[1]))
        self._on_ready(self)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) > _HIGH_WATER and not self._paused and self.transport:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        self._wake()
        self._stop_timer()
        if self._drain_waiter and not self._drain_waiter.done():
            self._drain_waiter.set_result(None)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._drain_waiter and not self._drain_waiter.done():
            self._drain_waiter.set_result(None)

    @property
    def local(self) -> tuple[str, int]:
        """Our address on this connection, read when asked (the gateway does
        not need it for every client)."""
        transport = self.transport
        local = transport.get_extra_info("sockname") if transport is not None else None
        return (str(local[0]), int(local[1])) if local else ("", 0)

    # -- reading ------------------------------------------------------------

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def _wait(self, deadline: float | None = None) -> None:
        if self._held:
            self.flush()  # never hold a reply while waiting for input
        if self._eof:
            return
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        loop = self._loop or asyncio.get_running_loop()
        self._waiter = loop.create_future()
        self._deadline = deadline
        if deadline is not None:
            if deadline <= loop.time():
                self._waiter = None
                raise TimeoutError()
            if self._timer is not None and self._timer.when() > deadline:
                self._stop_timer()
            if self._timer is None:
                self._timer = loop.call_at(deadline, self._on_timer)
        try:
            await self._waiter
        finally:
            self._waiter = None
            self._deadline = None

    def _on_timer(self) -> None:
        self._timer = None
        waiter, deadline = self._waiter, self._deadline
        if waiter is None or waiter.done() or deadline is None:
            return  # nobody waits now: the next wait arms the timer again
        loop = self._loop or asyncio.get_running_loop()
        if loop.time() < deadline:  # armed for an earlier deadline
            self._timer = loop.call_at(deadline, self._on_timer)
        else:
            waiter.set_exception(TimeoutError())

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def pending(self) -> int:
        """Bytes received and not yet read: input sent ahead of our replies."""
        return len(self._buffer)

    @property
    def at_eof(self) -> bool:
        return self._eof and not self._buffer

    @property
    def is_open(self) -> bool:
        """Connected, and the peer has not closed its side."""
        return self.transport is not None and not self.transport.is_closing() and not self._eof

    def discard_pending(self) -> None:
        del self._buffer[:]

    async def wait_for_input(self) -> None:
        """Return once anything is buffered or the client has gone."""
        while not self._buffer and not self._eof:
            await self._wait()

    def time(self) -> float:
        """The event loop's clock, the one deadlines are given in."""
        return (self._loop or asyncio.get_running_loop()).time()

    def take_line(self, limit: int) -> bytes | None:
        """A complete line already buffered (with its ending), or None when
        none is; ``LineTooLong`` when the line exceeds ``limit`` (nothing is
        consumed then: the caller gives up on the connection)."""
        buffer = self._buffer
        end = buffer.find(b"\n", 0, limit)
        if end < 0:
            if len(buffer) >= limit:
                raise LineTooLong()
            return None
        line = bytes(buffer[: end + 1])
        del buffer[: end + 1]
        return line

    async def wait_for_more(self, deadline: float | None = None) -> None:
        """Wait for more input (at once at end of input); ``TimeoutError``
        when ``deadline`` passes first."""
        await self._wait(deadline)

    async def readline(self, limit: int, deadline: float | None = None) -> bytes:
        skipping = False
        while True:
            end = self._buffer.find(b"\n")
            if end >= 0:
                line = bytes(self._buffer[: end + 1])
                del self._buffer[: end + 1]
                if skipping or len(line) > limit:
                    raise LineTooLong()
                return line
            if len(self._buffer) > limit:
                skipping = True
                del self._buffer[:]
            if self._eof:
                del self._buffer[:]
                self.flush()  # nothing more to answer: what is held goes now
                return b""
            await self._wait(deadline)

    async def read_data(
        self,
        max_size: int,
        deadline: float | None = None,
        claim: Callable[[int], bool] | None = None,
    ) -> tuple[bytes | None, int]:
        """(payload or None if over ``max_size``, bytes seen); EOFError if cut off.

        The payload starts right after the 354 reply; we look for the end
        marker with a virtual ``<CR><LF>`` in front so an empty message works.
        ``claim(n)`` is told the bytes held so far; when it answers False the
        rest is read and dropped as over ``max_size`` is (payload None).
        """
        chunks = bytearray(b"\r\n")
        overflow = False
        dropped = 0
        while True:
            if self._buffer:
                scan_from = max(0, len(chunks) - 4)
                chunks += self._buffer
                del self._buffer[:]
                end = chunks.find(_END, scan_from)
                if end >= 0:
                    rest = bytes(chunks[end + len(_END) :])
                    if rest:
                        self._buffer[:0] = rest
                    size = dropped + end
                    self._send_next = True  # the reply to the end of data
                    if overflow or size > max_size:
                        return None, size
                    return bytes(chunks[2 : end + 2]), size
                over_budget = claim is not None and not claim(len(chunks))
                if over_budget or dropped + len(chunks) - 2 > max_size:
                    overflow = True
                    dropped += len(chunks) - 4
                    del chunks[:-4]
                    if claim is not None:
                        claim(len(chunks))
            if self._eof:
                raise EOFError("connection closed during DATA")
            await self._wait(deadline)

    # -- writing ------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Send ``data``, or hold it while pipelined input is buffered."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if self._send_next or not self._buffer or not self._hold_replies:
            self._send_next = False
            if self._held:
                self._held.append(data)
                self.flush()
            else:
                transport.write(data)
            return
        self._held.append(data)
        self._held_size += len(data)
        if self._held_size > _HOLD_LIMIT:
            self.flush()

    def flush(self) -> None:
        """Send the held output now (one write)."""
        held, self._held = self._held, []
        self._held_size = 0
        if held and self.transport is not None and not self.transport.is_closing():
            self.transport.write(held[0] if len(held) == 1 else b"".join(held))

    @property
    def held(self) -> int:
        """Bytes written and held back (see ``write``), not yet sent."""
        return self._held_size

    @property
    def write_paused(self) -> bool:
        """The transport asked us to stop writing (``drain`` would wait)."""
        return self._write_paused

    async def drain(self) -> None:
        if self._write_paused and self.transport is not None and not self.transport.is_closing():
            self._drain_waiter = asyncio.get_running_loop().create_future()
            await self._drain_waiter

    def close(self) -> None:
        self._stop_timer()
        if self._held:
            self.flush()
        if self.transport is not None:
            self.transport.close()
