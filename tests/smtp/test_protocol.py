"""The SMTP protocol engine alone, on a real loopback socket.

A recording handler stands in for the gateway (the engine's whole view of
it is the narrow ``Handler`` interface): these tests show which steps reach
the handler and in which order, which never do (sequence and grammar
errors), the line and error limits, pipelining, and that pregreet and
protocol findings are recorded on the session and left to the handler to
score, never scored by the engine.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import weakref
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import pytest

from mailmoat.config import Config
from mailmoat.core.findings import Finding
from mailmoat.core.symbols import Action, Stage
from mailmoat.core.transaction import Session, Transaction
from mailmoat.smtp import answers
from mailmoat.smtp.answers import GO, Answer, Outcome, Verdict, drop, say
from mailmoat.smtp.budget import ByteBudget
from mailmoat.smtp.host import SessionHost
from mailmoat.smtp.protocol import SmtpProtocol
from mailmoat.wire.connection import Connection


class RecordingHandler:
    """Says yes to everything unless told otherwise; remembers every call."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.calls: list[tuple[str, ...]] = []
        self.delay = 0.0
        self.refused_rcpts: set[str] = set()
        self.dropped: set[Finding] = set()
        self.failing: set[str] = set()
        self.payloads: list[bytes] = []
        self.closed = asyncio.Event()

    def _call(self, *call: str) -> None:
        self.calls.append(call)
        if call[0] in self.failing:
            raise RuntimeError(f"{call[0]} failed")

    async def on_connect(self) -> Verdict:
        self._call("connect")
        return GO

    async def greeting_delay(self) -> float:
        return self.delay

    async def on_patient(self) -> None:
        self._call("patient")

    async def on_finding(self, finding: Finding) -> Verdict:
        self._call("finding", finding.value)
        if finding in self.dropped:
            tx = Transaction(self.session)
            return drop(Outcome(tx, None, Action.REJECT.value, "protocol", Stage.CONNECT))
        return GO

    async def on_helo(self, name: str) -> Verdict:
        self._call("helo", name)
        return GO

    async def on_mail(self, sender: str, options: list[str], forwarded: dict[str, str]) -> Verdict:
        self._call("mail", sender, *options)
        return GO

    async def on_rcpt(self, rcpt: str) -> Verdict:
        self._call("rcpt", rcpt)
        if rcpt in self.refused_rcpts:
            return say(Answer(550, "5.1.1", "No such user"))
        return GO

    async def on_message(self, payload: bytes) -> Verdict:
        self._call("message")
        self.payloads.append(payload)
        return say(answers.queued("Q1"))

    async def on_message_refused(self, answer: Answer, reason: str) -> Verdict:
        self._call("message_refused", reason)
        return say(answer)

    async def on_end(self) -> None:
        self._call("end")

    async def on_reset(self) -> None:
        self._call("reset")

    async def record(self, outcome: Outcome, answer: Answer) -> None:
        self._call("record", outcome.reason, answer.line())

    async def on_close(self) -> None:
        self._call("close")
        self.closed.set()


@dataclasses.dataclass
class StubHost:
    config: Config
    stopping: bool = False
    tls_context: None = None
    xforward_networks: list[Any] = dataclasses.field(default_factory=list)
    upstream_address: None = None
    inflight: ByteBudget = dataclasses.field(default_factory=lambda: ByteBudget(0))


def make_config(**sections: dict[str, Any]) -> Config:
    config = Config()
    for name, values in sections.items():
        config = dataclasses.replace(
            config, **{name: dataclasses.replace(getattr(config, name), **values)}
        )
    return dataclasses.replace(
        config, smtp=dataclasses.replace(config.smtp, hostname="mx.engine.test")
    )


class Engine:
    """One engine behind a listening loopback socket; the last client's handler."""

    def __init__(self, config: Config, prepare: Callable[[RecordingHandler], None]) -> None:
        self.host = StubHost(config)
        self.prepare = prepare
        self.handlers: list[RecordingHandler] = []
        self.engines: list[SmtpProtocol] = []
        self.tasks: set[asyncio.Task[None]] = set()

    def accept(self, conn: Connection) -> None:
        session = Session(client_ip=conn.peer[0], client_port=conn.peer[1])
        handler = RecordingHandler(session)
        self.prepare(handler)
        engine = SmtpProtocol(cast(SessionHost, self.host), conn, session, handler)
        self.handlers.append(handler)
        self.engines.append(engine)
        task = asyncio.get_running_loop().create_task(engine.run())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    @property
    def handler(self) -> RecordingHandler:
        return self.handlers[-1]


class Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def reply(self) -> str:
        lines = []
        while True:
            raw = await asyncio.wait_for(self.reader.readline(), 5)
            if not raw:
                raise ConnectionError(f"closed after {lines!r}")
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            lines.append(line)
            if len(line) < 4 or line[3] != "-":
                return "\n".join(lines)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def command(self, line: str) -> str:
        await self.send(line.encode() + b"\r\n")
        return await self.reply()

    async def replies(self, count: int) -> list[str]:
        return [await self.reply() for _ in range(count)]

    async def closed(self) -> bool:
        return await asyncio.wait_for(self.reader.read(), 5) == b""


@pytest.fixture
async def run_engine() -> AsyncIterator[Any]:
    servers: list[asyncio.Server] = []
    writers: list[asyncio.StreamWriter] = []
    engines: list[Engine] = []

    async def start(
        config: Config | None = None,
        prepare: Callable[[RecordingHandler], None] = lambda handler: None,
        greet: bool = True,
    ) -> tuple[Engine, Client]:
        engine = Engine(config or make_config(), prepare)
        engines.append(engine)
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: Connection(engine.accept), "127.0.0.1", 0)
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writers.append(writer)
        client = Client(reader, writer)
        if greet:
            assert (await client.reply()).startswith("220 mx.engine.test")
        return engine, client

    yield start
    for writer in writers:
        writer.close()
    for server in servers:
        server.close()
    tasks = [task for engine in engines for task in engine.tasks]
    if tasks:
        await asyncio.wait(tasks, timeout=5)
    for task in tasks:
        task.cancel()


Start = Callable[..., Any]


async def test_only_well_ordered_steps_reach_the_handler(run_engine: Start) -> None:
    engine, client = await run_engine()
    assert (await client.command("MAIL FROM:<a@b.test>")).startswith("503 5.5.1")
    assert (await client.command("RCPT TO:<u@example.org>")).startswith("503 5.5.1")
    assert (await client.command("DATA")).startswith("503 5.5.1")
    assert (await client.command("EHLO c.test")).startswith("250-mx.engine.test")
    assert (await client.command("RCPT TO:<u@example.org>")).startswith("503 5.5.1")
    assert (await client.command("MAIL FROM:<a@b.test> BODY=8BITMIME")) == "250 2.1.0 Ok"
    assert (await client.command("MAIL FROM:<a@b.test>")).startswith("503 5.5.1 Error: nested")
    assert (await client.command("DATA")) == "503 5.5.1 Error: need RCPT command"
    assert (await client.command("RCPT TO:<u@example.org>")) == "250 2.1.5 Ok"
    assert (await client.command("DATA")).startswith("354")
    await client.send(b"Subject: x\r\n\r\n..dot\r\n.\r\n")
    assert await client.reply() == "250 2.0.0 Ok: queued as Q1"
    assert (await client.command("QUIT")).startswith("221 2.0.0")
    assert await client.closed()
    await asyncio.wait_for(engine.handler.closed.wait(), 5)
    assert engine.handler.calls == [
        ("connect",),
        ("helo", "c.test"),
        ("mail", "a@b.test", "BODY=8BITMIME"),
        ("rcpt", "u@example.org"),
        ("message",),
        ("end",),
        ("close",),
    ]
    assert engine.handler.payloads == [b"Subject: x\r\n\r\n..dot\r\n"], "still dot-stuffed"


async def test_refused_recipients_leave_no_valid_recipient_for_data(run_engine: Start) -> None:
    def refuse_bob(handler: RecordingHandler) -> None:
        handler.refused_rcpts.add("bob@example.org")

    _engine, client = await run_engine(prepare=refuse_bob)
    await client.command("EHLO c.test")
    await client.command("MAIL FROM:<>")
    assert (await client.command("RCPT TO:<bob@example.org>")) == "550 5.1.1 No such user"
    assert (await client.command("DATA")) == "554 5.5.1 Error: no valid recipients"


async def test_rset_and_a_new_greeting_abort_the_transaction(run_engine: Start) -> None:
    engine, client = await run_engine()
    await client.command("EHLO c.test")
    await client.command("MAIL FROM:<a@b.test>")
    assert (await client.command("RSET")) == "250 2.0.0 Ok"
    assert (await client.command("RCPT TO:<u@example.org>")).startswith("503")
    await client.command("MAIL FROM:<a@b.test>")
    assert (await client.command("HELO again.test")) == "250 mx.engine.test"
    assert (await client.command("RCPT TO:<u@example.org>")).startswith("503")
    # RSET and a greeting in a transaction abort it (a first greeting has none).
    assert [call[0] for call in engine.handler.calls].count("reset") == 2


async def test_pipelining_after_ehlo_is_answered_in_order(run_engine: Start) -> None:
    engine, client = await run_engine()
    await client.command("EHLO c.test")
    await client.send(
        b"MAIL FROM:<a@b.test>\r\nRCPT TO:<u@example.org>\r\nRCPT TO:<v@example.org>\r\n"
        b"NOOP\r\nDATA\r\n"
    )
    replies = await client.replies(5)
    assert [reply[:3] for reply in replies] == ["250", "250", "250", "250", "354"]
    assert engine.handler.session.findings == []


async def test_pipelining_without_ehlo_is_a_finding_left_to_the_handler(
    run_engine: Start,
) -> None:
    engine, client = await run_engine()
    await client.send(b"HELO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<u@example.org>\r\n")
    replies = await client.replies(3)
    assert [reply[:3] for reply in replies] == ["250", "250", "250"], "scoring is not the engine's"
    assert Finding.PIPELINING in engine.handler.session.findings
    assert ("finding", "pipelining") in engine.handler.calls
    assert engine.handler.session.symbols == [], "the engine adds no symbol"


async def test_a_dropped_finding_closes_with_521_and_is_recorded(run_engine: Start) -> None:
    def drop_non_smtp(handler: RecordingHandler) -> None:
        handler.dropped.add(Finding.NON_SMTP)

    engine, client = await run_engine(prepare=drop_non_smtp)
    assert (await client.command("NOOP")) == "250 2.0.0 Ok"
    assert (await client.command("GET / HTTP/1.1")) == "521 5.5.1 Protocol error, goodbye"
    assert await client.closed()
    await asyncio.wait_for(engine.handler.closed.wait(), 5)
    assert engine.handler.session.findings == [Finding.NON_SMTP]
    assert ("record", "protocol", "521 5.5.1 Protocol error, goodbye") in engine.handler.calls


async def test_bare_newline_is_a_finding_and_the_command_is_served(run_engine: Start) -> None:
    engine, client = await run_engine()
    await client.send(b"NOOP\n")
    assert await client.reply() == "250 2.0.0 Ok"
    assert engine.handler.session.findings == [Finding.BARE_NEWLINE]


async def test_talking_before_the_greeting_is_a_pregreet_finding(run_engine: Start) -> None:
    def watch(handler: RecordingHandler) -> None:
        handler.delay = 2.0

    engine, client = await run_engine(prepare=watch, greet=False)
    await client.send(b"EHLO eager.test\r\n")
    assert (await client.reply()).startswith("220 mx.engine.test")
    assert (await client.reply()).startswith("250-mx.engine.test")
    assert engine.handler.session.findings == [Finding.PREGREET]
    assert ("patient",) not in engine.handler.calls


async def test_a_patient_client_is_told_to_the_handler(run_engine: Start) -> None:
    def watch(handler: RecordingHandler) -> None:
        handler.delay = 0.2

    engine, client = await run_engine(prepare=watch, greet=False)
    assert (await client.reply()).startswith("220 mx.engine.test")
    assert engine.handler.calls == [("connect",), ("patient",)]
    assert engine.handler.session.findings == []


async def test_command_line_limit_is_exact_and_the_session_goes_on(run_engine: Start) -> None:
    engine, client = await run_engine(make_config(smtp={"max_command_length": 64}))
    assert (await client.command("VRFY " + "x" * 59)).startswith("252"), "64 bytes: served"
    assert (await client.command("VRFY " + "x" * 60)) == "500 5.5.2 Line too long"
    assert (await client.command("NOOP")) == "250 2.0.0 Ok"
    assert engine.handler.calls == [("connect",)]


async def test_malformed_commands_never_reach_the_handler(run_engine: Start) -> None:
    engine, client = await run_engine()
    await client.send(b"NO\x00OP\r\n\xff\xfe HELO\r\nFROB\r\nAUTH PLAIN x\r\nHELO\r\nHELO a b\r\n")
    assert await client.replies(6) == [
        "500 5.5.2 Syntax error: NUL byte in command",
        "500 5.5.2 Syntax error: bad command",
        "500 5.5.1 Command unrecognized",
        "502 5.5.1 Command not implemented",
        "501 5.5.4 Syntax: HELO hostname",
        "501 5.5.4 Syntax: HELO hostname",
    ]
    await client.command("EHLO c.test")
    assert (await client.command("MAIL FROM:<a@b.test> RET=FULL")).startswith("555 5.5.4")
    assert (await client.command("MAIL TO:<a@b.test>")) == "501 5.5.4 Syntax: MAIL FROM:<address>"
    steps = [call[0] for call in engine.handler.calls if call[0] != "finding"]
    assert steps == ["connect", "helo"]


async def test_too_many_errors_close_with_421(run_engine: Start) -> None:
    engine, client = await run_engine(make_config(protocol={"hard_error_limit": 3}))
    await client.send(b"BOGUS\r\n" * 5)
    replies = await client.replies(4)
    assert [reply[:3] for reply in replies] == ["500", "500", "500", "421"]
    assert replies[-1] == "421 4.7.0 Too many errors, closing connection"
    assert await client.closed()
    await asyncio.wait_for(engine.handler.closed.wait(), 5)
    assert engine.handler.calls[-1] == ("close",)


async def test_recipients_past_the_limit_count_as_errors_past_the_overshoot(
    run_engine: Start,
) -> None:
    config = make_config(
        smtp={"max_recipients": 1, "recipient_overshoot_limit": 1},
        protocol={"hard_error_limit": 2},
    )
    engine, client = await run_engine(config)
    await client.command("EHLO c.test")
    await client.command("MAIL FROM:<a@b.test>")
    await client.send(b"".join(b"RCPT TO:<u%d@example.org>\r\n" % n for n in range(4)))
    replies = await client.replies(4)
    assert [reply[:9] for reply in replies] == ["250 2.1.5", *["452 4.5.3"] * 3]
    # The first 452 was not counted, the next two were: the limit is reached.
    assert (await client.command("NOOP")).startswith("421 4.7.0")
    assert [call for call in engine.handler.calls if call[0] == "rcpt"] == [
        ("rcpt", "u0@example.org")
    ]


async def test_a_failing_handler_is_451_and_the_session_goes_on(run_engine: Start) -> None:
    def fail_mail(handler: RecordingHandler) -> None:
        handler.failing.add("mail")

    engine, client = await run_engine(prepare=fail_mail)
    await client.command("EHLO c.test")
    assert (await client.command("MAIL FROM:<a@b.test>")) == (
        "451 4.3.0 Internal error, try again later"
    )
    assert engine.handler.calls[-1] == ("reset",)
    assert (await client.command("RCPT TO:<u@example.org>")).startswith("503")
    assert (await client.command("NOOP")) == "250 2.0.0 Ok"


async def test_xforward_is_offered_to_trusted_clients_only(run_engine: Start) -> None:
    _engine, client = await run_engine()
    assert "XFORWARD" not in await client.command("EHLO c.test")
    assert (await client.command("XFORWARD ADDR=192.0.2.1")) == "502 5.5.1 Command not implemented"


async def test_undeclared_8bit_is_a_finding_and_the_message_goes_on(run_engine: Start) -> None:
    engine, client = await run_engine()
    await client.command("EHLO c.test")
    await client.command("MAIL FROM:<a@b.test>")
    await client.command("RCPT TO:<u@example.org>")
    assert (await client.command("DATA")).startswith("354")
    await client.send(b"Subject: caf\xc3\xa9\r\n\r\nx\r\n.\r\n")
    assert (await client.reply()).startswith("250")
    assert engine.handler.session.findings == [Finding.UNDECLARED_8BIT]
    assert engine.handler.calls[-3:] == [("finding", "undeclared_8bit"), ("message",), ("end",)]


async def test_a_message_over_the_size_limit_is_refused_by_the_engine(run_engine: Start) -> None:
    engine, client = await run_engine(make_config(smtp={"max_message_size": 100}))
    await client.command("EHLO c.test")
    await client.command("MAIL FROM:<a@b.test>")
    await client.command("RCPT TO:<u@example.org>")
    await client.command("DATA")
    await client.send(b"Subject: big\r\n\r\n" + b"x" * 200 + b"\r\n.\r\n")
    assert (await client.reply()).startswith("552 5.3.4")
    assert ("message_refused", "size") in engine.handler.calls
    assert ("message",) not in engine.handler.calls
    assert (await client.command("RCPT TO:<u@example.org>")).startswith("503"), "envelope over"


async def test_a_finished_connection_is_freed_without_the_garbage_collector() -> None:
    # An engine holding its own bound methods made each connection a
    # reference cycle: garbage only the collector frees, at a cost per message.
    loop = asyncio.get_running_loop()
    host = StubHost(make_config())
    freed: list[weakref.ref[SmtpProtocol]] = []
    tasks: set[asyncio.Task[None]] = set()

    def accept(conn: Connection) -> None:
        session = Session(client_ip=conn.peer[0], client_port=conn.peer[1])
        engine = SmtpProtocol(cast(SessionHost, host), conn, session, RecordingHandler(session))
        freed.append(weakref.ref(engine))
        task = loop.create_task(engine.run())
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    gc.collect()
    gc.disable()
    try:
        server = await loop.create_server(lambda: Connection(accept), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        client = Client(reader, writer)
        assert (await client.reply()).startswith("220")
        for command in ("EHLO c.test", "MAIL FROM:<a@b.test>", "RCPT TO:<u@example.org>"):
            assert (await client.command(command)).startswith("250")
        assert (await client.command("DATA")).startswith("354")
        await client.send(b"Subject: x\r\n\r\nx\r\n.\r\n")
        assert (await client.reply()).startswith("250")
        assert (await client.command("QUIT")).startswith("221")
        assert await client.closed()
        writer.close()
        server.close()
        await server.wait_closed()
        for _ in range(20):
            if not tasks:
                break
            await asyncio.sleep(0.01)
        assert not tasks
        await asyncio.sleep(0)
        assert [ref() for ref in freed] == [None]
    finally:
        gc.enable()
