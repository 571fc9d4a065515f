"""The upstream client against scripted SMTP servers on loopback: pipelining
when offered (and only then), multi-line replies, garbage, hangups, timeouts."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from mailmoat.delivery.upstream import ClientFacts, Reply, UpstreamError, UpstreamSession

FACTS = ClientFacts("192.0.2.7", "client.example", "helo.example")
Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def serving(script: Script) -> tuple[asyncio.Server, int]:
    server = await asyncio.start_server(script, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def session(port: int, timeout: float = 2.0) -> UpstreamSession:
    return UpstreamSession(
        "127.0.0.1",
        port,
        "mx.test",
        connect_timeout=timeout,
        command_timeout=timeout,
        data_timeout=timeout,
    )


async def greet(writer: asyncio.StreamWriter, reader: asyncio.StreamReader, ehlo: bytes) -> None:
    writer.write(b"220 upstream ESMTP\r\n")
    await reader.readline()
    writer.write(ehlo)


PIPELINING_EHLO = (
    b"250-upstream\r\n250-PIPELINING\r\n250-XFORWARD NAME ADDR HELO\r\n250 SIZE 1000\r\n"
)


async def test_pipelines_xforward_mail_and_first_rcpt_when_offered() -> None:
    recorded: list[bytes] = []

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await greet(writer, reader, PIPELINING_EHLO)
        # No reply until all three commands are in: a client waiting for
        # each reply would stall here and time out.
        lines = [await reader.readline() for _ in range(3)]
        recorded.extend(lines)
        writer.write(b"250 2.0.0 Ok\r\n250 2.1.0 Ok\r\n550 5.1.1 <nobody@example.org>: unknown\r\n")
        await writer.drain()
        await reader.read()

    server, port = await serving(script)
    upstream = session(port, timeout=1.0)
    await upstream.open()
    mail, rcpt = await upstream.begin(
        "a@sender.test", ["SIZE=10", "BODY=8BITMIME"], FACTS, "nobody@example.org"
    )
    upstream.close()
    server.close()
    assert recorded == [
        b"XFORWARD ADDR=192.0.2.7 NAME=client.example HELO=helo.example\r\n",
        b"MAIL FROM:<a@sender.test> SIZE=10\r\n",  # BODY not offered: not passed on
        b"RCPT TO:<nobody@example.org>\r\n",
    ]
    assert (mail.code, rcpt is not None and rcpt.code) == (250, 550)
    assert rcpt is not None and rcpt.text == "5.1.1 <nobody@example.org>: unknown"


async def test_one_command_at_a_time_without_pipelining() -> None:
    recorded: list[bytes] = []

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await greet(writer, reader, b"250-upstream\r\n250 XFORWARD ADDR\r\n")
        for reply in (b"250 ok\r\n", b"250-multi\r\n250 line\r\n", b"250 ok\r\n"):
            recorded.append(await reader.readline())
            await asyncio.sleep(0.05)  # anything sent ahead of our reply is a violation
            recorded.append(b"AHEAD" if reader._buffer else b"-")  # type: ignore[attr-defined]
            writer.write(reply)
        await reader.read()

    server, port = await serving(script)
    upstream = session(port)
    await upstream.open()
    mail, rcpt = await upstream.begin("a@sender.test", [], FACTS, "b@example.org")
    upstream.close()
    server.close()
    assert recorded == [
        b"XFORWARD ADDR=192.0.2.7\r\n", b"-", b"MAIL FROM:<a@sender.test>\r\n", b"-",
        b"RCPT TO:<b@example.org>\r\n", b"-",
    ]  # fmt: skip
    assert mail.text == "multi\nline" and mail.lines() == "250-multi\r\n250 line"
    assert rcpt is not None and rcpt.ok


async def test_refused_mail_sends_no_rcpt_without_pipelining() -> None:
    recorded: list[bytes] = []

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await greet(writer, reader, b"250 upstream\r\n")
        recorded.append(await reader.readline())
        writer.write(b"553 5.7.1 sender refused\r\n")
        recorded.append(await reader.readline())  # QUIT, not RCPT
        writer.write(b"221 bye\r\n")

    server, port = await serving(script)
    upstream = session(port)
    await upstream.open()
    mail, rcpt = await upstream.begin("a@sender.test", [], FACTS, "b@example.org")
    await upstream.quit()
    server.close()
    assert (mail.code, rcpt) == (553, None)
    assert recorded == [b"MAIL FROM:<a@sender.test>\r\n", b"QUIT\r\n"]


@pytest.mark.parametrize(
    ("answer", "detail"),
    [
        (b"hello there\r\n", "garbage"),
        (b"250-half a reply", "closed"),
        (b"", "timeout"),
        (b"250 " + b"x" * 5000 + b"\r\n", "too long"),
    ],
)
async def test_anything_but_a_reply_is_a_451(answer: bytes, detail: str) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await greet(writer, reader, b"250 upstream\r\n")
        await reader.readline()
        writer.write(answer)
        if detail == "closed":
            writer.close()
            return
        await asyncio.sleep(1)

    server, port = await serving(script)
    upstream = session(port, timeout=0.3)
    await upstream.open()
    with pytest.raises(UpstreamError) as raised:
        await upstream.rcpt("b@example.org")
    server.close()
    assert raised.value.reply.code == 451
    assert detail in raised.value.detail
    assert not upstream.connected


async def test_refused_greeting_and_unreachable_port() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"554 5.3.2 go away\r\n")
        await writer.drain()

    server, port = await serving(script)
    with pytest.raises(UpstreamError, match="greeting: 554"):
        await session(port).open()
    server.close()
    await server.wait_closed()
    with pytest.raises(UpstreamError) as raised:
        await session(port).open()
    assert raised.value.reply.text.startswith("4.4.1")


async def test_talking_out_of_turn_makes_a_connection_unusable() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await greet(writer, reader, b"250 upstream\r\n")
        await asyncio.sleep(0.05)
        writer.write(b"421 4.4.2 idle timeout\r\n")
        await asyncio.sleep(1)

    server, port = await serving(script)
    upstream = session(port)
    await upstream.open()
    assert upstream.connected
    await asyncio.sleep(0.2)
    assert not upstream.connected  # the pool will not hand it out
    upstream.close()
    server.close()


async def test_cr_or_lf_inside_an_argument_is_never_sent() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await greet(writer, reader, b"250 upstream\r\n")
        await asyncio.sleep(1)

    server, port = await serving(script)
    upstream = session(port)
    await upstream.open()
    with pytest.raises(UpstreamError):
        await upstream.rcpt("b@example.org>\r\nDATA")
    upstream.close()
    server.close()


async def test_a_cancelled_exchange_or_open_transaction_is_never_reusable() -> None:
    """Cancelled while waiting for a reply (the client's session ended), the
    connection is closed rather than pooled; a refused RSET closes it too."""
    rsets: list[bytes] = []

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await greet(writer, reader, b"250 upstream\r\n")
        await reader.readline()  # MAIL: answered late
        await asyncio.sleep(0.5)
        writer.write(b"250 2.1.0 Ok\r\n")
        line = await reader.readline()
        if line:  # the first connection is closed instead
            rsets.append(line)
            writer.write(b"451 4.3.0 cannot reset\r\n")
            await reader.read()

    server, port = await serving(script)
    first = session(port)
    await first.open()
    begun = asyncio.ensure_future(first.begin("a@example.org", [], FACTS))
    await asyncio.sleep(0.1)
    begun.cancel()
    with pytest.raises(asyncio.CancelledError):
        await begun
    assert first.connected and not first.reusable
    assert not await first.settle()
    assert not first.connected and rsets == []

    second = session(port)
    await second.open()
    mail, _ = await second.begin("a@example.org", [], FACTS)
    assert mail.ok and second.in_transaction and not second.reusable
    assert not await second.settle()  # RSET refused: closed, not pooled
    assert rsets == [b"RSET\r\n"] and not second.connected
    server.close()
    await server.wait_closed()


async def test_replies_split_anywhere_across_reads_are_put_together() -> None:
    """A pipelined group's replies, multi-line ones included, arriving a few
    bytes at a time; then the message on the wire, stuffed, in one piece."""
    received: list[bytes] = []

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await greet(writer, reader, PIPELINING_EHLO)
        for _ in range(3):
            await reader.readline()
        replies = b"250 2.0.0 Ok\r\n250-2.1.0 Ok\r\n250-sender fine\r\n250 2.1.0 really\r\n"
        replies += b"450-4.2.0 <b@example.org>:\r\n450 4.2.0 try later\r\n"
        for at in range(0, len(replies), 3):
            writer.write(replies[at : at + 3])
            await writer.drain()
            await asyncio.sleep(0.001)
        await reader.readline()  # RSET
        writer.write(b"250 2.0.0 Ok\r\n")
        # The same client's XFORWARD again: a pooled connection's next
        # transaction may be another client's.
        assert (await reader.readline()).startswith(b"XFORWARD ADDR=192.0.2.7 ")
        assert await reader.readline() == b"MAIL FROM:<a@sender.test>\r\n"
        await reader.readline()
        writer.write(b"250 2.0.0 Ok\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n")
        assert await reader.readline() == b"DATA\r\n"
        writer.write(b"354 go ahead\r\n")
        received.append(await reader.readuntil(b"\r\n.\r\n"))
        writer.write(b"250 2.0.0 Ok: queued\r\n")
        await reader.read()

    server, port = await serving(script)
    upstream = session(port)
    await upstream.open()
    mail, rcpt = await upstream.begin("a@sender.test", [], FACTS, "b@example.org")
    assert mail == Reply(250, "2.1.0 Ok\nsender fine\n2.1.0 really")
    assert rcpt == Reply(450, "4.2.0 <b@example.org>:\n4.2.0 try later")
    assert await upstream.settle()
    await upstream.begin("a@sender.test", [], FACTS, "b@example.org")
    end = await upstream.data(b"Subject: x\r\n\r\n.dot\r\nlast line, no end")
    assert end == Reply(250, "2.0.0 Ok: queued")
    assert upstream.reusable
    upstream.close()
    server.close()
    assert received == [b"Subject: x\r\n\r\n..dot\r\nlast line, no end\r\n.\r\n"]


async def test_a_reply_of_too_many_lines_is_a_451() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await greet(writer, reader, b"250 upstream\r\n")
        await reader.readline()
        writer.write(b"250-more\r\n" * 250 + b"250 done\r\n")
        await asyncio.sleep(1)

    server, port = await serving(script)
    upstream = session(port)
    await upstream.open()
    with pytest.raises(UpstreamError, match="too long") as raised:
        await upstream.rcpt("b@example.org")
    server.close()
    assert raised.value.reply.code == 451
    assert not upstream.connected


CHUNKING_EHLO = b"250-upstream\r\n250-PIPELINING\r\n250 CHUNKING\r\n"


@pytest.mark.parametrize("verdict", [b"250 2.0.0 Ok: queued", b"554 5.7.1 refused"])
async def test_chunking_sends_the_message_unstuffed_as_one_bdat(verdict: bytes) -> None:
    received: list[bytes] = []

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await greet(writer, reader, CHUNKING_EHLO)
        for _ in range(2):
            await reader.readline()
        writer.write(b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n")
        command = await reader.readline()
        size = int(command.split()[1])
        received.extend([command, await reader.readexactly(size)])
        writer.write(verdict + b"\r\n")
        # The next transaction; after a refused BDAT, an RSET leads it.
        lines = 2 if verdict.startswith(b"250") else 3
        received.extend([await reader.readline() for _ in range(lines)])
        writer.write(b"250 2.0.0 Ok\r\n" * lines)
        await reader.read()

    server, port = await serving(script)
    upstream = session(port)
    await upstream.open()
    await upstream.begin("a@sender.test", [], FACTS, "b@example.org")
    message = b"Subject: x\r\n\r\n.dot\r\n.\r\nlast line, no end"
    end = await upstream.data(message)
    assert upstream.reusable
    await asyncio.sleep(0.05)
    assert len(received) == 2  # no RSET of its own
    mail, rcpt = await upstream.begin("a@sender.test", [], FACTS, "b@example.org")
    assert mail.ok and rcpt is not None and rcpt.ok
    upstream.close()
    server.close()
    assert (end.code, end.text) == (int(verdict[:3]), verdict[4:].decode())
    body = message + b"\r\n"  # not stuffed: BDAT counts bytes
    assert received[:2] == [b"BDAT %d LAST\r\n" % len(body), body]
    following = [b"MAIL FROM:<a@sender.test>\r\n", b"RCPT TO:<b@example.org>\r\n"]
    assert received[2:] == ([] if end.ok else [b"RSET\r\n"]) + following


@pytest.mark.parametrize("answer", [b"250 2.0.0 Ok", b"451 4.3.0 cannot reset"])
async def test_an_owed_rset_leads_the_next_pipelined_group(answer: bytes) -> None:
    """With PIPELINING, RSET costs no round trip of its own; refused, the
    replies after it are not believed: the connection is closed, 451."""
    groups: list[list[bytes]] = []

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await greet(writer, reader, PIPELINING_EHLO)
        groups.append([await reader.readline() for _ in range(3)])
        writer.write(b"250 2.0.0 Ok\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n")
        groups.append([await reader.readline() for _ in range(4)])
        writer.write(answer + b"\r\n" + b"250 2.0.0 Ok\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n")
        await reader.read()

    server, port = await serving(script)
    upstream = session(port)
    await upstream.open()
    await upstream.begin("a@sender.test", [], FACTS, "b@example.org")
    await upstream.rset()  # the client said RSET: nothing sent yet
    assert upstream.reusable and not upstream.in_transaction
    assert await upstream.settle()
    await asyncio.sleep(0.05)
    assert len(groups) == 1
    if answer.startswith(b"250"):
        mail, rcpt = await upstream.begin("c@sender.test", [], FACTS, "d@example.org")
        assert mail.ok and rcpt is not None and rcpt.ok and upstream.in_transaction
    else:
        with pytest.raises(UpstreamError, match="refused RSET") as raised:
            await upstream.begin("c@sender.test", [], FACTS, "d@example.org")
        assert raised.value.reply.code == 451 and not upstream.connected
    upstream.close()
    server.close()
    assert groups[1][0] == b"RSET\r\n"
    assert groups[1][1].startswith(b"XFORWARD ") and groups[1][2:] == [
        b"MAIL FROM:<c@sender.test>\r\n",
        b"RCPT TO:<d@example.org>\r\n",
    ]
