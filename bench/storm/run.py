"""Botnet storm: >= 10,000 concurrent bot connections while a legitimate
client sends 1,000 messages. Prints connections, RSS, fds, latency, losses.

Usage (from the repository root, not part of the test run)::

    .venv/bin/python bench/storm/run.py [--bots 12000] [--messages 1000]

What it does, all on loopback:
1. starts rbldnsd serving a test DNSBL zone that lists a fifth of the bots,
2. starts the gateway as its own process (``mailmoat serve --config ...``),
3. starts a bot process (asyncio, uvloop) opening ``--bots`` connections
   from 127.0.<10..>.<1..50> (then 127.1.0.x...): idlers (connect and say nothing), pregreeters
   (talk before the banner; dropped with 521, they come back 5-15 s later), slow drippers
   (a command byte every two seconds) and blocklisted bots (EHLO/MAIL/RCPT,
   refused 554 at RCPT, then they sit on the connection),
4. once the storm holds its connections, starts the legitimate client (its
   own process, 127.0.0.1, ``--parallel`` sessions, one connection per
   message) and measures connect -> ``250`` after DATA for each message,
5. samples the gateway's RSS and open file descriptors, then stops
   everything and counts the Maildir files against the 250s received.

File descriptors: the bots and the gateway each need one per connection;
the script raises RLIMIT_NOFILE to the hard limit for itself and its
children (``ulimit -Hn`` must be >= bots + 1000; raise it as root with
``ulimit -n 65536`` or in /etc/security/limits.conf if it is lower).
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import random
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PYTHON = sys.executable
MAILMOAT = str(Path(PYTHON).with_name("mailmoat"))
HOSTS_PER_NET = 50
FIRST_NET = 10
BLOCKLISTED_NETS = 5  # every fifth /24 is on the DNSBL

MESSAGE = (
    b"From: Alice <alice@partner.example>\r\nTo: bob@example.org\r\n"
    b"Subject: quarterly invoice\r\nDate: Sat, 28 Nov 2026 03:00:00 +0000\r\n"
    b"Message-ID: <%d.storm@partner.example>\r\n\r\n" + b"Please find the figures below.\r\n" * 40
)


def raise_nofile() -> int:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bot_address(n: int) -> str:
    """A loopback address for bot ``n``: 127.A.B.C, the /24 index carried into
    the second octet. Always a valid address literal, so that resolving it
    never asks a name service (an octet above 255 would be taken as a host
    name and sent to the system's DNS resolver)."""
    net = FIRST_NET + n // HOSTS_PER_NET
    address = f"127.{net // 256}.{net % 256}.{1 + n % HOSTS_PER_NET}"
    if not ipaddress.ip_address(address).is_loopback:
        raise ValueError(f"bot {n} would not be on loopback: {address}")
    return address


def behaviour(n: int) -> str:
    net = n // HOSTS_PER_NET
    if net % BLOCKLISTED_NETS == 0:
        return "blocklisted"
    return ("idle", "idle", "pregreet", "drip")[n % 4]


# -- the bots ------------------------------------------------------------------


async def bots_main(port: int, count: int, status_path: Path, ramp: float) -> None:
    state = {
        "open": 0,
        "peak": 0,
        "connects": 0,
        "refused": 0,
        "limited": 0,
        "errors": 0,
        "dropped": 0,
    }
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)

    async def one(n: int) -> None:
        await asyncio.sleep(ramp * n / count)
        kind = behaviour(n)
        while not stop.is_set():
            try:
                reader, writer = await asyncio.open_connection(
                    "127.0.0.1", port, local_addr=(bot_address(n), 0)
                )
            except OSError:
                state["errors"] += 1
                await asyncio.sleep(1 + random.random())
                continue
            state["connects"] += 1
            state["open"] += 1
            state["peak"] = max(state["peak"], state["open"])
            try:
                await behave(kind, reader, writer, stop, state)
            except (OSError, asyncio.IncompleteReadError):
                state["dropped"] += 1
            finally:
                state["open"] -= 1
                writer.close()
            if kind != "pregreet":
                await stop.wait()  # the others hold one connection each
            else:
                # Dropped with 521, a bot tries again a little later.
                await asyncio.sleep(5 + random.random() * 10)

    async def report() -> None:
        while True:
            status_path.write_text(json.dumps(state))
            await asyncio.sleep(0.25)

    reporter = asyncio.create_task(report())
    tasks = [asyncio.create_task(one(n)) for n in range(count)]
    await stop.wait()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    reporter.cancel()
    status_path.write_text(json.dumps(state))


async def behave(
    kind: str,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    stop: asyncio.Event,
    state: dict[str, int],
) -> None:
    if kind == "pregreet":
        writer.write(b"EHLO bot.example\r\n")
        await reader.read(512)  # 521 and close, or the banner if it was too slow
        return
    if kind == "idle":
        while not stop.is_set() and await reader.read(512):
            pass
        return
    banner = await reader.readline()
    if not banner.startswith(b"220"):
        state["limited"] += 1  # 421: a rate or concurrency limit
        await stop.wait()
        return
    if kind == "drip":
        for byte in b"EHLO dripping.bot.example\r\n":
            writer.write(bytes([byte]))
            await asyncio.sleep(2.0)
            if stop.is_set():
                return
        await stop.wait()
        return
    # blocklisted: a real attempt, refused at RCPT (554, DNSBL) or earlier
    # (451, e.g. the shared bot sender's message rate); then it lingers.
    for line in (
        b"EHLO spam.bot.example",
        b"MAIL FROM:<x@bot.example>",
        b"RCPT TO:<a@example.org>",
    ):
        writer.write(line + b"\r\n")
        reply = await reader.readline()
        while reply[3:4] == b"-":
            reply = await reader.readline()
        if reply[:1] in (b"4", b"5"):
            state["refused" if reply[:1] == b"5" else "limited"] += 1
            break
    await stop.wait()


# -- the legitimate client -----------------------------------------------------


async def legit_main(port: int, messages: int, parallel: int, out: Path) -> None:
    latencies: list[float] = []
    failures: list[str] = []
    counter = iter(range(messages))

    async def send_one(n: int) -> None:
        started = time.monotonic()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:

            async def reply() -> bytes:
                line = await asyncio.wait_for(reader.readline(), 60)
                while line[3:4] == b"-":
                    line = await asyncio.wait_for(reader.readline(), 60)
                return line

            steps = [
                b"",
                b"EHLO mail.partner.example\r\n",
                b"MAIL FROM:<alice@partner.example>\r\n",
                b"RCPT TO:<bob@example.org>\r\n",
                b"DATA\r\n",
                MESSAGE % n + b".\r\n",
            ]
            for step in steps:
                if step:
                    writer.write(step)
                line = await reply()
                if line[:1] not in (b"2", b"3"):
                    failures.append(line.decode(errors="replace").strip())
                    return
            latencies.append(time.monotonic() - started)
            writer.write(b"QUIT\r\n")
        finally:
            writer.close()

    async def worker() -> None:
        for n in counter:
            try:
                await send_one(n)
            except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
                failures.append(repr(exc))

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(parallel)))
    out.write_text(
        json.dumps(
            {"latencies": latencies, "failures": failures, "elapsed": time.monotonic() - started}
        )
    )


# -- the orchestra -------------------------------------------------------------


def write_zone(workdir: Path, bots: int) -> None:
    lines = [":127.0.0.2:Listed as a storm bot"]
    nets = range(FIRST_NET, FIRST_NET + (bots + HOSTS_PER_NET - 1) // HOSTS_PER_NET)
    lines += [
        f"127.{net // 256}.{net % 256}.0/24"
        for net in nets
        if (net - FIRST_NET) % BLOCKLISTED_NETS == 0
    ]
    (workdir / "storm.zone").write_text("\n".join(lines) + "\n")


def write_config(workdir: Path, smtp_port: int, dns_port: int) -> Path:
    path = workdir / "mailmoat.toml"
    path.write_text(
        f"""
[smtp]
listen = "127.0.0.1:{smtp_port}"
hostname = "mx.storm.test"
max_connections = 20000
command_timeout = 300
[relay]
domains = ["example.org"]
[delivery]
maildir = "{workdir}/maildir"
[store]
url = "sqlite:///{workdir}/store.db"
[quarantine]
directory = "{workdir}/quarantine"
[dns]
nameserver = "127.0.0.1:{dns_port}"
timeout = 2
[dnsbl]
sites = ["storm.test=127.0.0.[2..11]*3"]
threshold = 3
[pregreet]
delay = 6
[ratelimit]
exempt = ["127.0.0.1/32"]
[log]
level = "{os.environ.get("STORM_LOG_LEVEL", "WARNING")}"
"""
    )
    return path


class Sampler:
    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_rss = 0
        self.peak_fds = 0

    def pids(self) -> list[int]:
        """The gateway: its supervisor and the prefork workers (smtp.workers)."""
        try:
            children = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split()
        except OSError:
            children = []
        return [self.pid, *(int(c) for c in children)]

    def sample(self) -> None:
        rss = fds = 0
        for pid in self.pids():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
                fds += len(os.listdir(f"/proc/{pid}/fd"))
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    rss += int(line.split()[1]) * 1024
        # Summed peaks of all gateway processes: an upper bound of their peak.
        self.peak_rss = max(self.peak_rss, rss)
        self.peak_fds = max(self.peak_fds, fds)


def wait_port(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"gateway did not listen on {port}")


def status_of(path: Path) -> dict[str, int]:
    try:
        data: dict[str, int] = json.loads(path.read_text())
        return data
    except (OSError, ValueError):
        return {}


def orchestrate(args: argparse.Namespace) -> int:
    limit = raise_nofile()
    if limit < args.bots + 1000:
        print(f"RLIMIT_NOFILE hard limit {limit} < bots + 1000: run `ulimit -Hn 65536` as root")
        return 2
    rbldnsd = shutil.which("rbldnsd", path="/usr/sbin:/usr/bin")
    if rbldnsd is None:
        print("rbldnsd not installed (apt-get install rbldnsd)")
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="mailmoat-storm-"))
    workdir.chmod(0o755)  # rbldnsd drops root privileges and must read its zone
    write_zone(workdir, args.bots)
    dns_port = free_port(socket.SOCK_DGRAM)
    smtp_port = free_port()
    config = write_config(workdir, smtp_port, dns_port)
    procs: list[subprocess.Popen[bytes]] = []
    log = open(workdir / "gateway.log", "wb")  # noqa: SIM115
    try:
        procs.append(
            subprocess.Popen(
                [
                    rbldnsd,
                    "-n",
                    "-4",
                    *(["-u", "rbldns"] if os.geteuid() == 0 else []),
                    "-w",
                    str(workdir),
                    "-b",
                    f"127.0.0.1/{dns_port}",
                    "storm.test:ip4set:storm.zone",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        serve = [MAILMOAT, "serve", "--config", str(config)]
        if args.profile:
            serve = [PYTHON, "-m", "cProfile", "-o", args.profile, "-m", "mailmoat", *serve[1:]]
        gateway = subprocess.Popen(serve, stdout=log, stderr=log, cwd=workdir)
        procs.append(gateway)
        wait_port(smtp_port)
        sampler = Sampler(gateway.pid)
        status = workdir / "bots.json"
        bots = subprocess.Popen(
            [PYTHON, __file__, "bots", str(smtp_port), str(args.bots), str(status), str(args.ramp)]
        )
        procs.append(bots)
        print(f"storm: {args.bots} bots ramping up over {args.ramp:g}s ...", flush=True)
        deadline = time.monotonic() + args.ramp + 60
        held = int(args.bots * 0.75)  # pregreeters come and go
        while (
            status_of(status).get("open", 0) < min(held, args.target)
            and time.monotonic() < deadline
        ):
            sampler.sample()
            time.sleep(0.25)
        print(f"storm holding: {status_of(status)}", flush=True)
        # The legitimate client's address passes pregreet once, then is remembered.
        out = workdir / "legit.json"
        warm_out = workdir / "warm.json"
        subprocess.run([PYTHON, __file__, "legit", str(smtp_port), "1", "1", str(warm_out)])
        legit = subprocess.Popen(
            [
                PYTHON,
                __file__,
                "legit",
                str(smtp_port),
                str(args.messages),
                str(args.parallel),
                str(out),
            ]
        )
        peak_open = 0
        while legit.poll() is None:
            sampler.sample()
            peak_open = max(peak_open, status_of(status).get("open", 0))
            time.sleep(0.25)
        for _ in range(8):  # a little longer under the storm after the legit run
            sampler.sample()
            peak_open = max(peak_open, status_of(status).get("open", 0))
            time.sleep(0.25)
        bots.send_signal(signal.SIGTERM)
        try:
            bots.wait(30)
        except subprocess.TimeoutExpired:
            bots.kill()  # its last status report is on disk
            bots.wait()
        storm = status_of(status)
        alive = gateway.poll() is None
        gateway.send_signal(signal.SIGTERM)
        gateway.wait(60)
        result = json.loads(out.read_text())
        warm_result = json.loads(warm_out.read_text())
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        log.close()
    latencies = sorted(result["latencies"])
    delivered = len(list((workdir / "maildir" / "new").iterdir()))
    accepted = len(latencies) + len(warm_result["latencies"])  # + the warm-up message
    p50 = statistics.median(latencies) if latencies else float("nan")
    p99 = latencies[int(len(latencies) * 0.99) - 1] if latencies else float("nan")
    print(f"bots: {args.bots} ({json.dumps(storm)})")
    print(f"peak concurrent bot connections:   {max(peak_open, storm.get('peak', 0))}")
    print(f"gateway peak RSS:                   {sampler.peak_rss / 2**20:.0f} MiB")
    print(f"gateway peak open file descriptors: {sampler.peak_fds}")
    print(
        f"legit messages: {len(latencies)}/{args.messages} answered 250 "
        f"in {result['elapsed']:.1f}s, failures: {len(result['failures'])} "
        f"{result['failures'][:3]}"
    )
    print(f"legit time to 250: p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms")
    print(f"lost: {accepted - delivered} (250s received {accepted}, Maildir files {delivered})")
    print(f"gateway survived: {alive}; workdir {workdir}")
    ok = alive and accepted == delivered and not result["failures"] and p99 < 2.0
    if ok and not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if ok else 1


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "bots":
        raise_nofile()
        _, _, port, count, status, ramp = sys.argv
        run_fast(bots_main(int(port), int(count), Path(status), float(ramp)))
        return 0
    if len(sys.argv) > 1 and sys.argv[1] == "legit":
        _, _, port, messages, parallel, out = sys.argv
        run_fast(legit_main(int(port), int(messages), int(parallel), Path(out)))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bots", type=int, default=12_000)
    parser.add_argument("--target", type=int, default=10_000, help="connections to hold")
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--parallel", type=int, default=10)
    parser.add_argument("--ramp", type=float, default=10.0, help="seconds to open all bots")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--profile", default="", help="write a cProfile of the gateway here")
    return orchestrate(parser.parse_args())


def run_fast(coroutine: object) -> None:
    try:
        import uvloop

        uvloop.run(coroutine)  # type: ignore[arg-type]
    except ImportError:
        asyncio.run(coroutine)  # type: ignore[arg-type]


if __name__ == "__main__":
    sys.exit(main())
