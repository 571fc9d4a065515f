"""Connection's writing: replies to pipelined commands leave together,
never held while the connection waits for input; the greeting and the
reply to the end of data go out at once. A recording transport counts the
writes (fast unit tests); tests/smtp/test_pipelining.py checks the same
over loopback against the whole gateway."""

from __future__ import annotations

import asyncio

import pytest

from mailmoat.wire.connection import Connection, LineTooLong


class RecordingTransport:
    """What ``Connection`` uses of a transport; every write recorded."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> tuple[str, int]:
        return ("127.0.0.1", 2525)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def connected(*, hold_replies: bool = True) -> tuple[Connection, RecordingTransport]:
    conn = Connection(lambda _conn: None, hold_replies=hold_replies)
    transport = RecordingTransport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    return conn, transport


async def test_greeting_goes_out_at_once_even_with_input_waiting() -> None:
    conn, transport = connected()
    conn.data_received(b"EHLO early\r\n")
    conn.write(b"220 hello\r\n")
    assert transport.writes == [b"220 hello\r\n"]


async def test_replies_to_pipelined_commands_leave_in_one_write() -> None:
    conn, transport = connected()
    conn.write(b"220 hello\r\n")
    conn.data_received(b"MAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nDATA\r\n")
    for reply in (b"250 mail\r\n", b"250 rcpt\r\n"):
        await conn.readline(512)
        conn.write(reply)
    assert transport.writes == [b"220 hello\r\n"]
    assert conn.held == len(b"250 mail\r\n250 rcpt\r\n")
    await conn.readline(512)  # DATA: the last command buffered
    conn.write(b"354 go\r\n")
    assert transport.writes == [b"220 hello\r\n", b"250 mail\r\n250 rcpt\r\n354 go\r\n"]
    assert conn.held == 0


async def test_held_replies_are_sent_before_waiting_for_input() -> None:
    conn, transport = connected()
    conn.write(b"220 hello\r\n")
    conn.data_received(b"NOOP\r\nNO")  # the next command only half here
    await conn.readline(512)
    conn.write(b"250 noop\r\n")
    assert transport.writes == [b"220 hello\r\n"]
    reading = asyncio.ensure_future(conn.readline(512))
    await asyncio.sleep(0)
    # The client may be waiting for this reply before it sends the rest.
    assert transport.writes == [b"220 hello\r\n", b"250 noop\r\n"]
    conn.data_received(b"OP\r\n")
    assert await reading == b"NOOP\r\n"


async def test_reply_to_the_end_of_data_goes_out_at_once() -> None:
    conn, transport = connected()
    conn.write(b"220 hello\r\n")
    conn.data_received(b"Subject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n")
    payload, size = await conn.read_data(1000)
    assert size == len(payload or b"")
    assert payload == b"Subject: x\r\n\r\nbody\r\n"
    conn.write(b"250 queued\r\n")  # QUIT is buffered, yet this one is not held
    assert transport.writes[-1] == b"250 queued\r\n"
    await conn.readline(512)
    conn.write(b"221 bye\r\n")
    assert transport.writes[-1] == b"221 bye\r\n"


async def test_close_sends_what_is_held_first() -> None:
    conn, transport = connected()
    conn.write(b"220 hello\r\n")
    conn.data_received(b"RSET\r\nQUIT\r\n")
    await conn.readline(512)
    conn.write(b"250 reset\r\n")
    conn.close()
    assert transport.writes == [b"220 hello\r\n", b"250 reset\r\n"]
    assert transport.closed


async def test_explicit_flush_and_the_hold_limit() -> None:
    conn, transport = connected()
    conn.write(b"220 hello\r\n")
    conn.data_received(b"NOOP\r\n" * 20_000)
    await conn.readline(512)
    conn.write(b"250 one\r\n")
    conn.flush()
    assert transport.writes[-1] == b"250 one\r\n"
    replies = 0
    while len(transport.writes) == 2:
        await conn.readline(512)
        conn.write(b"250 2.0.0 Ok\r\n")
        replies += 1
    # Past 64 KiB held, the replies go out without waiting for the input to end.
    assert transport.writes[2] == b"250 2.0.0 Ok\r\n" * replies
    assert 65_536 < len(transport.writes[2]) < 65_536 + 100


async def test_without_holding_every_write_goes_at_once() -> None:
    conn, transport = connected(hold_replies=False)
    conn.write(b"EHLO mx\r\n")
    conn.data_received(b"220 upstream\r\n250 ok\r\n")
    assert await conn.readline(512) == b"220 upstream\r\n"
    conn.write(b"MAIL FROM:<>\r\n")
    assert transport.writes == [b"EHLO mx\r\n", b"MAIL FROM:<>\r\n"]


async def test_nothing_is_written_once_closing() -> None:
    conn, transport = connected()
    transport.closed = True
    conn.write(b"220 hello\r\n")
    assert transport.writes == []


@pytest.mark.parametrize("rest", [b"", b"NOO"])
async def test_held_replies_go_out_at_the_end_of_input(rest: bytes) -> None:
    conn, transport = connected()
    conn.write(b"220 hello\r\n")
    conn.data_received(b"NOOP\r\nNOOP\r\n" + rest)
    conn.eof_received()
    for reply in (b"250 one\r\n", b"250 two\r\n"):
        await conn.readline(512)
        conn.write(reply)
    assert await conn.readline(512) == b""
    assert transport.writes == [b"220 hello\r\n", b"250 one\r\n250 two\r\n"]


async def test_addresses_of_both_ends() -> None:
    conn, _transport = connected()
    assert conn.peer == ("127.0.0.1", 2525)
    assert conn.local == ("127.0.0.1", 2525)  # asked of the socket on demand


async def test_take_line_bounds_a_line_as_readline_does() -> None:
    conn, _transport = connected()
    conn.data_received(b"250 ok\r\n250 par")
    assert conn.take_line(8) == b"250 ok\r\n"  # exactly the limit, its ending counted
    assert conn.take_line(8) is None  # incomplete, nothing consumed
    conn.data_received(b"tial\r\n")
    with pytest.raises(LineTooLong):
        conn.take_line(8)
    assert conn.take_line(100) == b"250 partial\r\n"
