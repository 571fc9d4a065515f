"""CPU per message of the SMTP front alone: one process, no sockets.

A ``Gateway`` (checks of the connect, helo, mail and rcpt stages on, content
checks off, SQLite store, Maildir delivery under /dev/shm when present) is
driven through in-memory transports: each message is one connection with
HELO, MAIL, RCPT, DATA (4 KiB), QUIT, one command at a time, as
``smtp-source`` sends them. Without kernel networking, other processes or
the upstream leg, what is measured is the front's own Python (engine,
handler, replies, records) plus the checks of those stages: the place to
compare two trees of the front side by side, alternating runs
(``PYTHONPATH=/tmp/base/src`` for the other tree).

    .venv/bin/python bench/smtp_front/run.py [--messages 1000] [--rounds 3] [--warmup 200]

Prints the process CPU time per message (us) of each round.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from gateway_harness import BARE_SERVE, write_test_config  # noqa: E402
from mailmoat.config import load_config  # noqa: E402
from mailmoat.runtime import Runtime  # noqa: E402
from mailmoat.smtp.server import Gateway  # noqa: E402
from mailmoat.wire.connection import Connection  # noqa: E402

CONTENT_CHECKS = (
    "spf", "dkim", "dmarc", "auth_results", "urlbl", "rules", "classifier", "attachments",
    "bulk", "dnsbl", "rdns", "greylist", "reputation",
)  # fmt: skip
BODY = (
    b"From: sender@source.test\r\nTo: rcpt@example.org\r\nSubject: bench\r\n\r\n"
    + (b"x" * 78 + b"\r\n") * 50
)
COMMANDS = (
    b"HELO client.source.test\r\n",
    b"MAIL FROM:<sender@source.test>\r\n",
    b"RCPT TO:<rcpt@example.org>\r\n",
    b"DATA\r\n",
    BODY + b".\r\n",
    b"QUIT\r\n",
)


class MemoryTransport(asyncio.Transport):
    """Collects what the front writes; wakes the client at the reply it waits for."""

    def __init__(self, port: int) -> None:
        super().__init__()
        self.port = port
        self.written = bytearray()
        self.closed = False
        self.lines_wanted = 0
        self.waiter: asyncio.Future[None] | None = None

    def write(self, data: Any) -> None:
        self.written += data
        waiter = self.waiter
        if waiter and not waiter.done() and self.written.count(b"\r\n") >= self.lines_wanted:
            waiter.set_result(None)

    async def lines(self, count: int) -> None:
        if self.written.count(b"\r\n") < count:
            self.lines_wanted = count
            self.waiter = asyncio.get_running_loop().create_future()
            await self.waiter

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", self.port) if name in ("peername", "sockname") else default

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def one_message(gateway: Gateway, number: int) -> None:
    transport = MemoryTransport(10_000 + number % 50_000)
    conn = Connection(gateway._on_connection)
    conn.connection_made(transport)
    await transport.lines(1)  # the greeting
    for count, data in enumerate(COMMANDS, start=2):
        conn.data_received(data)
        await transport.lines(count)
    if b"250 2.0.0 Ok: queued" not in transport.written:
        raise RuntimeError(transport.written.decode(errors="replace"))
    conn.connection_lost(None)
    for _ in range(5):  # let the session close
        await asyncio.sleep(0)


async def main(args: argparse.Namespace) -> None:
    shm = Path("/dev/shm")
    root = Path(tempfile.mkdtemp(prefix="mm-front-", dir=shm if shm.is_dir() else None))
    disabled = {name: {"enabled": False} for name in CONTENT_CHECKS}
    config = load_config(write_test_config(root, {"checks": disabled}))
    runtime = await Runtime.open(config, BARE_SERVE)
    gateway = Gateway(runtime)
    try:
        for number in range(args.warmup):
            await one_message(gateway, number)
        for _ in range(args.rounds):
            started = time.process_time()
            for number in range(args.messages):
                await one_message(gateway, number)
            used = time.process_time() - started
            print(f"{used / args.messages * 1e6:.0f} us per message", flush=True)
    finally:
        await runtime.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=200)
    asyncio.run(main(parser.parse_args()))
