"""CPU per message of the SMTP transport: one gateway worker per source tree,
side by side, taking turns.

What it measures: for each source tree given (a checkout's ``src``, run via
``PYTHONPATH``), ``mailmoat serve`` with one worker (``smtp.workers = 1``),
the data-stage content checks off, relaying before-queue to ``smtp-sink``
(or, with ``--upstream postfix``, to a private Postfix, which offers
CHUNKING). The load is Postfix's ``smtp-source`` (20 sessions, 4 KiB, one
message per connection, one command at a time) or, with ``--pipelining``,
a client of this script sending MAIL, RCPT and DATA in one write and the
message with QUIT in another. Each turn sends ``--messages`` to one tree's
gateway and reads the CPU time of its process (all threads, from
``/proc/<pid>/task/*/schedstat``, nanoseconds) before and after; the trees
take turns, the order reversed every round, so bursts of other load hit
them alike. It prints each tree's median CPU per message and, for the
last tree against the first, the median of the per-round ratios (the
steadier figure on a shared box).

    .venv/bin/python bench/smtp_transport/run.py /tmp/base/src src [--rounds 20] [--messages 500]
        [--pipelining] [--upstream postfix]

Needs root (smtp-sink, Postfix), Debian's postfix and nsd packages; loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from servers import Nsd, Postfix, SmtpSink, free_port, tcp_listening  # noqa: E402

# The throughput benchmark's smtp-source runner, zones and check names.
_spec = importlib.util.spec_from_file_location(
    "smtp_throughput_run", ROOT / "bench" / "smtp_throughput" / "run.py"
)
assert _spec is not None and _spec.loader is not None
throughput = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(throughput)

BODY = (
    b"From: a@source.test\r\nTo: rcpt@example.org\r\nSubject: load\r\n\r\n"
    + (b"x" * 76 + b"\r\n") * 52
)


def start(
    src: str, upstream: str, nameserver: str, workdir: Path
) -> tuple[subprocess.Popen[bytes], int]:
    workdir.mkdir(parents=True)
    port = free_port()
    off = "".join(f"[checks.{name}]\nenabled = false\n" for name in throughput.CONTENT_CHECKS)
    config = workdir / "mailmoat.toml"
    config.write_text(
        f'[smtp]\nlisten = "127.0.0.1:{port}"\nhostname = "mx.bench.test"\nworkers = 1\n'
        f'[relay]\ndomains = ["example.org"]\nupstream = "{upstream}"\n'
        f'[pregreet]\ndelay = 0\n[store]\nurl = "sqlite:///{workdir}/store.db"\n'
        f'[web]\nenabled = false\n[dns]\nnameserver = "{nameserver}"\n' + off
    )
    log = (workdir / "serve.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mailmoat", "serve", "--config", str(config)],
        cwd=workdir, stdout=subprocess.DEVNULL, stderr=log, env={**os.environ, "PYTHONPATH": src},
    )  # fmt: skip
    deadline = time.monotonic() + 180
    while not tcp_listening(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError((workdir / "serve.log").read_text())
        time.sleep(0.05)
    return proc, port


def cpu_seconds(pid: int) -> float:
    """On-CPU time of every thread of ``pid`` (schedstat: nanoseconds)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            total += int((task / "schedstat").read_text().split()[0])
    return total / 1e9


async def _reply(reader: asyncio.StreamReader) -> bytes:
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("closed")
        if line[3:4] != b"-":
            return line


async def _pipelined_message(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await _reply(reader)
    writer.write(b"EHLO client.source.test\r\n")
    await _reply(reader)
    writer.write(b"MAIL FROM:<sender@source.test>\r\nRCPT TO:<rcpt@example.org>\r\nDATA\r\n")
    replies = [await _reply(reader) for _ in range(3)]
    if not replies[2].startswith(b"354"):
        raise RuntimeError(f"not accepted: {replies!r}")
    writer.write(BODY + b".\r\nQUIT\r\n")
    replies = [await _reply(reader) for _ in range(2)]
    if not replies[0].startswith(b"250"):
        raise RuntimeError(f"not accepted: {replies!r}")
    writer.close()


async def _pipelined_load(port: int, messages: int, sessions: int = 20) -> None:
    left = [messages]

    async def session() -> None:
        while left[0] > 0:
            left[0] -= 1
            await _pipelined_message(port)

    await asyncio.gather(*(session() for _ in range(sessions)))


def send(port: int, messages: int, pipelining: bool) -> None:
    if pipelining:
        asyncio.run(_pipelined_load(port, messages))
    else:
        throughput.smtp_source(port, messages)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("trees", nargs="+", help="source trees (a checkout's src directory)")
    parser.add_argument("--messages", type=int, default=500, help="per turn")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--pipelining", action="store_true")
    parser.add_argument("--upstream", choices=("smtp-sink", "postfix"), default="smtp-sink")
    args = parser.parse_args()
    if args.rounds < 2:
        parser.error("--rounds: at least 2")
    trees = [str(Path(tree).resolve()) for tree in args.trees]
    workdir = Path(tempfile.mkdtemp(prefix="mm-transport-"))
    zones = {**throughput.ZONES, **throughput.list_zones()}
    used: dict[int, list[float]] = {number: [] for number in range(len(trees))}
    with contextlib.ExitStack() as stack:
        sink = stack.enter_context(SmtpSink())
        dns = stack.enter_context(Nsd(zones))
        upstream = sink.address
        if args.upstream == "postfix":
            upstream = stack.enter_context(Postfix(relayhost=sink.address)).address
        gateways = []
        for number, tree in enumerate(trees):
            proc, port = start(tree, upstream, dns.address, workdir / str(number))
            stack.callback(proc.wait, 30)
            stack.callback(proc.terminate)
            gateways.append((proc.pid, port))
        for _pid, port in gateways:
            send(port, 300, args.pipelining)  # warm up
        for round_number in range(args.rounds):
            order = list(range(len(trees)))
            if round_number % 2:
                order.reverse()
            for number in order:
                pid, port = gateways[number]
                before = cpu_seconds(pid)
                send(port, args.messages, args.pipelining)
                used[number].append((cpu_seconds(pid) - before) / args.messages)
    load = "pipelining client" if args.pipelining else "smtp-source"
    print(f"{load} -> mailmoat (1 worker, content checks off) -> {args.upstream}")
    print(f"{args.rounds} rounds of {args.messages} messages; CPU per message (us):")
    for number, tree in enumerate(trees):
        values = used[number]
        print(
            f"  {tree}: median {statistics.median(values) * 1e6:.0f}, "
            f"min {min(values) * 1e6:.0f}, max {max(values) * 1e6:.0f}"
        )
    if len(trees) > 1:
        ratios = [last / first for first, last in zip(used[0], used[len(trees) - 1], strict=True)]
        low, _mid, high = statistics.quantiles(ratios, n=4)
        print(
            f"last / first tree, median of the rounds' ratios: {statistics.median(ratios):.3f} "
            f"(quartiles {low:.3f}-{high:.3f})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
