"""SMTP throughput and added latency: mailmoat against smtp-sink and Postfix.

In one run, Postfix's ``smtp-source`` (``-s 20`` parallel sessions, 4 KiB
messages) is pointed at:

1. ``smtp-sink`` directly: the limit of the client and the sink;
2. a private Postfix instance relaying to ``smtp-sink``: the peer;
3. ``mailmoat serve`` relaying before-queue to ``smtp-sink``: us, with every
   check of the default configuration (content analysis included);
4. the same with the data-stage content checks switched off: what the SMTP
   transport itself costs, for a like-for-like comparison with Postfix,
   which does no content analysis.

It prints messages per second for each and mailmoat's ratio to both, then
measures added latency: one client sends messages one after the other, to
the sink directly and through mailmoat, and the difference of the
end-of-DATA-to-250 times (p50, p99) is what mailmoat adds.

    .venv/bin/python bench/smtp_throughput/run.py [--messages 5000] [--latency 500]

Needs root (Postfix), Debian's postfix package; loopback only.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from servers import Nsd, Postfix, SmtpSink, free_port, tcp_listening  # noqa: E402

SMTP_SOURCE = "/usr/sbin/smtp-source"


def smtp_source(port: int, messages: int, sessions: int = 20, size: int = 4096) -> float:
    """Run smtp-source; return messages per second as the client saw them."""
    argv = [
        SMTP_SOURCE, "-s", str(sessions), "-l", str(size), "-m", str(messages), "-c",
        "-f", "sender@source.test", "-t", "rcpt@example.org", "-M", "client.source.test",
        f"127.0.0.1:{port}",
    ]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"smtp-source failed: {done.stderr[-2000:]}")
    return messages / elapsed


def read_reply(sock: socket.socket, buffer: bytearray) -> bytes:
    while True:
        end = buffer.find(b"\r\n")
        while end >= 0:
            line = bytes(buffer[: end + 2])
            del buffer[: end + 2]
            if len(line) < 4 or line[3:4] != b"-":
                return line
            end = buffer.find(b"\r\n")
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        buffer += chunk


def latencies(port: int, count: int) -> list[float]:
    """End-of-DATA to 250 times (seconds) for ``count`` sequential messages."""
    body = b"Subject: latency\r\nFrom: a@source.test\r\n\r\n" + (b"x" * 76 + b"\r\n") * 52
    times: list[float] = []
    with socket.create_connection(("127.0.0.1", port)) as sock:
        buffer = bytearray()
        read_reply(sock, buffer)
        sock.sendall(b"EHLO client.source.test\r\n")
        read_reply(sock, buffer)
        for _ in range(count):
            for command in (b"MAIL FROM:<a@source.test>", b"RCPT TO:<rcpt@example.org>", b"DATA"):
                sock.sendall(command + b"\r\n")
                read_reply(sock, buffer)
            started = time.perf_counter()
            sock.sendall(body + b".\r\n")
            reply = read_reply(sock, buffer)
            times.append(time.perf_counter() - started)
            if not reply.startswith(b"250"):
                raise RuntimeError(f"not accepted: {reply!r}")
    return times


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]


# What the checks look up for the load's client and sender, served on loopback
# so that the gateway's DNS is real but never leaves the machine.
ZONES = {
    "source.test": '@ IN TXT "v=spf1 ip4:127.0.0.0/8 -all"\n@ IN MX 10 mail\nmail IN A 127.0.0.1\n',
    "127.in-addr.arpa": "1.0.0 IN PTR client.source.test.\n",
}


CONTENT_CHECKS = (
    "spf", "dkim", "dmarc", "auth_results", "urlbl", "rules", "classifier", "attachments", "bulk",
)  # fmt: skip


def start_mailmoat(
    workdir: Path, upstream: str, nameserver: str, workers: int = 0, content: bool = True
) -> tuple[subprocess.Popen[bytes], int]:
    """``mailmoat serve`` relaying to ``upstream``; ``workers`` 0: one per core;
    ``content`` False switches the data-stage content checks off."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    disabled = (
        "" if content else "".join(f"[checks.{name}]\nenabled = false\n" for name in CONTENT_CHECKS)
    )
    config = workdir / "mailmoat.toml"
    config.write_text(
        f'[smtp]\nlisten = "127.0.0.1:{port}"\nhostname = "mx.bench.test"\n'
        f'[relay]\ndomains = ["example.org"]\nupstream = "{upstream}"\n'
        f'[pregreet]\ndelay = 0\n[store]\nurl = "sqlite:///{workdir}/store.db"\n'
        f'[log]\nlevel = "WARNING"\n[web]\nenabled = false\n'
        f'[dns]\nnameserver = "{nameserver}"\n' + disabled
    )
    log = (workdir / "serve.log").open("wb")  # the child process keeps it open
    proc = subprocess.Popen(
        [sys.executable, "-m", "mailmoat", "serve", "--config", str(config)],
        cwd=workdir, stdout=subprocess.DEVNULL, stderr=log,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while not tcp_listening(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError((workdir / "serve.log").read_text())
        time.sleep(0.05)
    return proc, port


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--latency", type=int, default=500, help="sequential messages")
    parser.add_argument(
        "--rounds", type=int, default=3, help="interleaved rounds; medians are printed"
    )
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="mm-bench-"))
    with SmtpSink() as sink, Postfix(relayhost=sink.address) as postfix, Nsd(ZONES) as dns:
        mailmoat, port = start_mailmoat(workdir / "full", sink.address, dns.address)
        bare, bare_port = start_mailmoat(workdir / "bare", sink.address, dns.address, content=False)
        try:
            smtp_source(sink.port, 200)  # warm up all of them
            smtp_source(port, 200)
            smtp_source(bare_port, 200)
            # The four targets take turns, round after round, so a burst of
            # other load on this shared box hits them alike; medians printed.
            rounds: list[tuple[float, float, float, float]] = []
            for _ in range(args.rounds):
                rounds.append(
                    (
                        smtp_source(sink.port, args.messages),
                        smtp_source(postfix.port, args.messages),
                        smtp_source(port, args.messages),
                        smtp_source(bare_port, args.messages),
                    )
                )
            direct, relayed_by_postfix, relayed_by_us, transport_only = (
                statistics.median(column) for column in zip(*rounds, strict=True)
            )
            sink.clear()
            base = latencies(sink.port, args.latency)
            ours = latencies(port, args.latency)
        finally:
            for proc in (mailmoat, bare):
                proc.terminate()
                proc.wait(30)
    print(f"messages per run: {args.messages}, 20 sessions, 4 KiB, median of {args.rounds} rounds")
    print("mailmoat / Postfix per round: " + ", ".join(f"{r[2] / r[1]:.2f}" for r in rounds))
    print(f"smtp-sink direct          {direct:8.0f} msgs/s  (the limit)")
    print(f"Postfix -> smtp-sink      {relayed_by_postfix:8.0f} msgs/s  (the peer)")
    print(f"mailmoat -> smtp-sink     {relayed_by_us:8.0f} msgs/s")
    print(f"mailmoat / Postfix        {relayed_by_us / relayed_by_postfix:8.2f}")
    print(f"mailmoat / smtp-sink      {relayed_by_us / direct:8.2f}")
    print(f"mailmoat, content checks off -> smtp-sink {transport_only:8.0f} msgs/s")
    print(f"  its ratio to Postfix    {transport_only / relayed_by_postfix:8.2f}")
    for label, pct in (("p50", 50.0), ("p99", 99.0)):
        added = (percentile(ours, pct) - percentile(base, pct)) * 1000
        print(f"added latency {label}        {added:8.2f} ms  "
              f"(direct {percentile(base, pct) * 1000:.2f} ms, "
              f"via mailmoat {percentile(ours, pct) * 1000:.2f} ms)")  # fmt: skip
    print(f"mean via mailmoat         {statistics.mean(ours) * 1000:8.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
