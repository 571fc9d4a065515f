"""The milter front under a header flood and a connection flood.

A scripted MTA speaks the real milter codec to ``MilterServer`` over
loopback. A message whose header fields exceed ``milter.max_header_bytes``
or ``milter.max_headers`` is refused with 552 5.3.4 at the next step the
MTA takes an answer for, without holding the flood in memory or stalling
other MTAs' sessions; connections past ``milter.max_connections`` are
closed at once with a log line naming the setting.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
import tracemalloc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from front_checks import front_config, scripted_runtime
from mailmoat.config import MilterConfig
from mailmoat.core.record import TransactionRecord
from mailmoat.milter import codec
from mailmoat.milter.server import MilterServer
from milter.mta import FakeMta

HEADERS_TOO_BIG = "552 5.3.4 Message header size or count exceeds the limit"
REFUSAL = codec.Packet(codec.REPLYCODE, HEADERS_TOO_BIG.encode() + b"\x00")
MIB = 1 << 20


@asynccontextmanager
async def _serve(
    **milter: object,
) -> AsyncIterator[tuple[MilterServer, str, int, list[TransactionRecord]]]:
    runtime, records = scripted_runtime(front_config(milter=MilterConfig(**milter)))  # type: ignore[arg-type]
    server = MilterServer(runtime)
    host, port = await server.start()
    try:
        yield server, host, port, records
    finally:
        await server.stop(grace=1)


@pytest.fixture
async def small() -> AsyncIterator[tuple[MilterServer, str, int, list[TransactionRecord]]]:
    async with _serve(max_header_bytes=64 * 1024, max_headers=50) as served:
        yield served


async def _start_message(mta: FakeMta) -> None:
    assert (await mta.session("192.0.2.1"))[-1].command == codec.CONTINUE
    await mta.send(codec.MACRO, b"Mi\x00QFLOOD\x00", reply=False)
    assert (await mta.send(codec.MAIL, b"<a@ham.test>\x00"))[-1].command == codec.CONTINUE
    assert (await mta.send(codec.RCPT, b"<b@mailmoat.test>\x00"))[-1].command == codec.CONTINUE
    assert (await mta.send(codec.DATA))[-1].command == codec.CONTINUE


async def _headers(mta: FakeMta, count: int, value_size: int) -> None:
    value = b" " + b"x" * value_size
    for index in range(count):
        await mta.send(codec.HEADER, b"X-Flood-%d\x00" % index + value + b"\x00", reply=False)


async def test_header_bytes_over_the_limit_refused_with_552(small) -> None:
    _server, host, port, records = small
    mta = await FakeMta.connect(host, port)
    assert mta.protocol & codec.SMFIP_NR_HDR  # no reply per header: the answer comes at BODY
    await _start_message(mta)
    await _headers(mta, 100, 1024)  # 100 KiB of fields, limit 64 KiB
    await mta.send(codec.EOH, reply=False)
    assert await mta.send(codec.BODY, b"hello\r\n") == [REFUSAL]
    [record] = records
    assert (record.action, record.reason, record.stage) == ("reject", "size", "data")
    assert record.reply == HEADERS_TOO_BIG and record.front == "milter"
    # The session goes on: the next message on the connection is judged normally.
    out = await mta.message("a@ham.test", ["b@mailmoat.test"], [("Subject", "hi")], b"ok\r\n")
    assert out["eom"][-1].command == codec.ACCEPT
    await mta.quit()


async def test_header_count_over_the_limit_refused_at_end_of_message(small) -> None:
    _server, host, port, records = small
    mta = await FakeMta.connect(host, port)
    await _start_message(mta)
    await _headers(mta, 51, 10)
    await mta.send(codec.EOH, reply=False)
    # An MTA configured to send no body chunk (SMFIP_NOBODY) goes straight to EOM.
    assert await mta.send(codec.BODYEOB) == [REFUSAL]
    assert [(r.action, r.reason) for r in records] == [("reject", "size")]
    await mta.quit()


async def test_refused_at_the_header_when_the_mta_waits_for_replies(small) -> None:
    _server, host, port, _records = small
    reader, writer = await asyncio.open_connection(host, port)
    mta = FakeMta(reader, writer)
    # Offer every step but SMFIP_NR_HDR: the MTA then waits for a reply to each field.
    offered = 0x1FFFFF & ~codec.SMFIP_NR_HDR
    answer = await mta.send(codec.OPTNEG, struct.pack("!III", 6, 0x1FF, offered))
    _v, _a, mta.protocol = struct.unpack("!III", answer[0].data)
    assert not mta.protocol & codec.SMFIP_NR_HDR
    await _start_message(mta)
    replies = []
    for index in range(60):
        packet = b"X-Flood-%d\x00 small\x00" % index
        replies.append((await mta.send(codec.HEADER, packet))[-1])
        if replies[-1].command != codec.CONTINUE:
            break
    assert replies[-1] == REFUSAL and len(replies) == 51
    await mta.quit()


async def test_header_flood_is_neither_held_nor_stalling_other_mtas() -> None:
    """48 MiB of header fields (default limits: 1 MiB, 1000 fields) while
    another MTA runs whole transactions: its steps stay prompt and memory
    stays far below the flood's size."""
    async with _serve() as (_server, host, port, records):
        flood_mta = await FakeMta.connect(host, port)
        other = await FakeMta.connect(host, port)
        await _start_message(flood_mta)
        await other.session("192.0.2.2")
        latencies: list[float] = []
        done = asyncio.Event()

        async def flood() -> list[codec.Packet]:
            try:
                await _headers(flood_mta, 48, MIB - 64)
                await flood_mta.send(codec.EOH, reply=False)
                answer = await flood_mta.send(codec.BODY, b"body\r\n")
                if answer[-1].command == codec.CONTINUE:
                    answer = await flood_mta.send(codec.BODYEOB)
                return answer
            finally:
                done.set()

        async def judged() -> None:
            while not done.is_set():
                started = time.monotonic()
                out = await other.message("a@ham.test", ["b@mailmoat.test"], [], b"hi\r\n")
                latencies.append(time.monotonic() - started)
                assert out["eom"][-1].command == codec.ACCEPT

        tracemalloc.start()
        try:
            answer, _ = await asyncio.gather(flood(), judged())
            _current, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        await flood_mta.quit()
        await other.quit()
        assert peak < 16 * MIB, f"peak {peak / MIB:.0f} MiB for a 48 MiB flood"
        assert latencies and max(latencies) < 1.0, latencies
        assert answer == [REFUSAL]
        assert ("reject", "size") in [(r.action, r.reason) for r in records]


async def test_connections_over_the_cap_are_closed_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="mailmoat.milter")
    async with _serve(max_connections=3) as (server, host, port, _records):
        kept = [await FakeMta.connect(host, port) for _ in range(3)]
        reader, writer = await asyncio.open_connection(host, port)
        assert await asyncio.wait_for(codec.read_packet(reader), 5) is None  # closed at once
        writer.close()
        assert server.cap.refused == 1
        [line] = [r.getMessage() for r in caplog.records if "max_connections" in r.getMessage()]
        assert "milter.max_connections = 3" in line
        # A freed slot is usable again, and the kept sessions still work.
        await kept.pop().quit()
        for _ in range(50):
            if len(server.sessions) < 3:
                break
            await asyncio.sleep(0.02)
        again = await FakeMta.connect(host, port)
        assert (await again.session("192.0.2.3"))[-1].command == codec.CONTINUE
        for mta in [*kept, again]:
            await mta.quit()
