"""Statistics overhead: gateway throughput with and without the stats recorder.

Runs the real gateway (uvloop, Maildir delivery, the built-in local checks
helo/headers/size, SQLite store) in a child process, once with the stats
recorder hooked in exactly as ``mailmoat serve`` does (``Runtime.open(config, "serve")``:
counters, top lists, history, flushed every ``stats.flush_interval``) and once
without, and drives the same load through it with Postfix's smtp-source
(``-s 20 -l 4096 -m N``). Rounds alternate the two modes; the median msgs/s
of each and their ratio are printed. Data lives under /dev/shm when present
so disk fsync noise does not hide the recorder's cost.

    .venv/bin/python bench/stats_overhead/run.py [--messages 20000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SMTP_SOURCE = "/usr/sbin/smtp-source"


def write_config(root: Path, stats: bool) -> Path:
    path = root / "mailmoat.toml"
    path.write_text(
        f"""
[smtp]
listen = "127.0.0.1:0"
hostname = "mx.bench.test"
[relay]
domains = ["example.org"]
[delivery]
maildir = "{root / "maildir"}"
[quarantine]
directory = "{root / "quarantine"}"
[store]
url = "sqlite:///{root / "store.db"}"
[pregreet]
delay = 0
[stats]
enabled = {"true" if stats else "false"}
node = "bench"
[web]
enabled = false
[classifier]
autolearn = false
[cluster]
model_reload_interval = 0
"""
    )
    return path


async def serve(config_path: str, port_file: str) -> None:
    from mailmoat.checks import headers, helo, size
    from mailmoat.checks.base import Services
    from mailmoat.config import load_config
    from mailmoat.pipeline import Pipeline
    from mailmoat.runtime import Runtime
    from mailmoat.smtp.server import Gateway

    def local_pipeline(services: Services) -> Pipeline:
        return Pipeline(services, [c for m in (helo, headers, size) for c in m.build(services)])

    config = load_config(config_path)
    runtime = await Runtime.open(config, "serve", pipeline_factory=local_pipeline)
    gateway = Gateway(runtime)
    _host, port = await gateway.start()
    cpu_ready = _cpu()
    Path(port_file).write_text(str(port))
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await gateway.stop()
    await runtime.close()
    # CPU seconds the gateway spent on the load (final stats flush included).
    Path(port_file + ".cpu").write_text(repr(_cpu() - cpu_ready))


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def one_run(stats: bool, messages: int) -> tuple[float, float]:
    """(msgs/s, gateway CPU microseconds per message)."""
    base = Path("/dev/shm") if Path("/dev/shm").is_dir() else None
    root = Path(tempfile.mkdtemp(prefix="mm-bench-", dir=base))
    try:
        config = write_config(root, stats)
        port_file = root / "port"
        child = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(config), str(port_file)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 30
            while not port_file.exists() or not port_file.read_text():
                if time.monotonic() > deadline or child.poll() is not None:
                    raise RuntimeError("gateway did not start")
                time.sleep(0.05)
            port = port_file.read_text()
            command = [SMTP_SOURCE, "-s", "20", "-l", "4096", "-m", str(messages)]
            command += ["-f", "sender@bench.example", "-t", "rcpt@example.org"]
            started = time.perf_counter()
            subprocess.run([*command, f"127.0.0.1:{port}"], check=True, timeout=600)
            elapsed = time.perf_counter() - started
        finally:
            child.send_signal(signal.SIGTERM)
            child.wait(60)
        delivered = len(list((root / "maildir" / "new").iterdir()))
        if delivered != messages:
            raise RuntimeError(f"{delivered} of {messages} messages delivered")
        if stats:
            check_counts(root, messages)
        cpu = float((root / "port.cpu").read_text())
        return messages / elapsed, cpu / messages * 1e6
    finally:
        shutil.rmtree(root, ignore_errors=True)


def check_counts(root: Path, messages: int) -> None:
    """The recorder must have counted every message (flushed at shutdown)."""
    from mailmoat.stats.counters import read_all_time
    from mailmoat.store import SqliteStore

    async def read() -> int:
        store = SqliteStore(root / "store.db")
        counts = await read_all_time(store, "bench")
        await store.close()
        return sum(v for k, v in counts.items() if k.startswith("msg:"))

    counted = asyncio.run(read())
    if counted != messages:
        raise RuntimeError(f"stats counted {counted} of {messages} messages")


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--serve":
        try:
            import uvloop

            uvloop.run(serve(sys.argv[2], sys.argv[3]))
        except ImportError:
            asyncio.run(serve(sys.argv[2], sys.argv[3]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not os.access(SMTP_SOURCE, os.X_OK):
        print(f"{SMTP_SOURCE} missing: apt-get install postfix", file=sys.stderr)
        return 2
    rates: dict[str, list[float]] = {"without": [], "with": []}
    cpus: dict[str, list[float]] = {"without": [], "with": []}
    for round_no in range(1, args.rounds + 1):
        order = ("without", "with") if round_no % 2 else ("with", "without")
        for mode in order:
            rate, cpu = one_run(mode == "with", args.messages)
            rates[mode].append(rate)
            cpus[mode].append(cpu)
            print(
                f"round {round_no} {mode:>7} stats: {rate:8.1f} msgs/s {cpu:8.1f} us CPU/msg",
                flush=True,
            )
    rate_off, rate_on = (statistics.median(rates[m]) for m in ("without", "with"))
    cpu_off, cpu_on = (statistics.median(cpus[m]) for m in ("without", "with"))
    print(f"median without stats: {rate_off:8.1f} msgs/s {cpu_off:8.1f} us CPU/msg")
    print(f"median with stats:    {rate_on:8.1f} msgs/s {cpu_on:8.1f} us CPU/msg")
    print(f"throughput ratio with/without: {rate_on / rate_off:.3f}")
    print(
        f"CPU per message with/without:  {cpu_on / cpu_off:.3f} "
        f"(overhead {cpu_on / cpu_off - 1:+.1%})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
