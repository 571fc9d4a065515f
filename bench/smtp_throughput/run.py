"""SMTP throughput and added latency: mailmoat against smtp-sink and Postfix.

In one run, Postfix's ``smtp-source`` (``-s 20`` parallel sessions, 4 KiB
messages) is pointed at:

1. ``smtp-sink`` directly: the limit of the client and the sink;
2. a private Postfix instance relaying to ``smtp-sink``: the peer;
3. ``mailmoat serve`` relaying before-queue to ``smtp-sink``: us, with every
   check of the default configuration (content analysis included) and its
   default logging (a line per transaction, to a file, as Postfix logs
   each message);
4. the same with the data-stage content checks switched off: what the SMTP
   transport itself costs, for a like-for-like comparison with Postfix,
   which does no content analysis.

It prints messages per second for each, mailmoat's ratio to both (to
Postfix: the median of the ratios of the rounds, each pair measured
back to back), and the CPU time per message of all processes of Postfix
and of mailmoat (more stable than rates on a shared box). Then it
measures added latency: one client sends messages one after the other, to
the sink directly and through mailmoat, and the difference of the
end-of-DATA-to-250 times (p50, p99) is what mailmoat adds.

    .venv/bin/python bench/smtp_throughput/run.py [--messages 2000] [--latency 500] [--rounds 8]

Needs root (Postfix), Debian's postfix package; loopback only.
"""

from __future__ import annotations

import argparse
import os
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


def tree_cpu(root: int) -> float:
    """CPU seconds (user and system) of process ``root`` and all its live
    descendants, with the children each has already reaped."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        pid = int(entry.name)
        parents[pid] = int(fields[1])
        times[pid] = sum(int(value) for value in fields[11:15]) / tick
    total = 0.0
    for pid, seconds in times.items():
        ancestor = pid
        while ancestor > 1 and ancestor != root:
            ancestor = parents.get(ancestor, 0)
        if ancestor == root:
            total += seconds
    return total


def wait_until_empty(queue_dir: Path, timeout: float = 300.0) -> None:
    """Until Postfix's queue holds no message (all relayed to the sink)."""
    deadline = time.monotonic() + timeout
    folders = [queue_dir / name for name in ("maildrop", "incoming", "active", "deferred")]
    while any(path.is_file() for folder in folders for path in folder.rglob("*")):
        if time.monotonic() > deadline:
            raise RuntimeError(f"Postfix's queue in {queue_dir} did not empty")
        time.sleep(0.05)


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


def list_zones() -> dict[str, str]:
    """The embedded defaults' DNS lists as empty zones: the client and the
    message are listed nowhere, and the answers (NXDOMAIN) are cached as a
    local resolver's would be. Without them every lookup is refused, and
    refusals are not cached."""
    from mailmoat.checks.dnsbl import parse_sites
    from mailmoat.checks.urlbl import parse_zone
    from mailmoat.config import Config

    defaults = Config()
    zones = {site.zone for site in parse_sites(defaults.dnsbl.sites)}
    zones |= {parse_zone(spec).zone for spec in defaults.urlbl.zones}
    return dict.fromkeys(sorted(zones), "")


CONTENT_CHECKS = (
    "spf", "dkim", "dmarc", "auth_results", "urlbl", "rules", "classifier", "attachments", "bulk",
)  # fmt: skip


# --reputation: the loopback load counted as any client's would be (it is one
# of our own networks by default, never counted), with an AS from a table.
COUNTED = '[reputation]\nown_networks = []\nprefix_table = "{table}"\n'
NOT_COUNTED = "[reputation]\nenabled = false\n"


def start_mailmoat(
    workdir: Path,
    upstream: str,
    nameserver: str,
    workers: int = 0,
    content: bool = True,
    extra: str = "",
) -> tuple[subprocess.Popen[bytes], int]:
    """``mailmoat serve`` relaying to ``upstream``; ``workers`` 0: one per core;
    ``content`` False switches the data-stage content checks off; ``extra``
    is appended to its config."""
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
        f"[web]\nenabled = false\n"
        f'[dns]\nnameserver = "{nameserver}"\n' + disabled + extra
    )
    log = (workdir / "serve.log").open("wb")  # the child process keeps it open
    proc = subprocess.Popen(
        [sys.executable, "-m", "mailmoat", "serve", "--config", str(config)],
        cwd=workdir, stdout=subprocess.DEVNULL, stderr=log,
    )  # fmt: skip
    deadline = time.monotonic() + 180  # the rules load: slow on a busy box
    while not tcp_listening(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError((workdir / "serve.log").read_text())
        time.sleep(0.05)
    return proc, port


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--latency", type=int, default=500, help="sequential messages")
    parser.add_argument(
        "--rounds", type=int, default=8, help="interleaved rounds; medians are printed"
    )
    parser.add_argument(
        "--reputation",
        action="store_true",
        help="also run mailmoat without reputation bookkeeping (and count the "
        "loopback load in the main run) to compare their CPU per message",
    )
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="mm-bench-"))
    zones = {**ZONES, **list_zones()}
    table = workdir / "prefixes.csv"
    table.write_text("127.0.0.0/8,64512,loopback\n")
    counted = COUNTED.format(table=table) if args.reputation else ""
    with SmtpSink() as sink, Postfix(relayhost=sink.address) as postfix, Nsd(zones) as dns:
        mailmoat, port = start_mailmoat(workdir / "full", sink.address, dns.address, extra=counted)
        bare, bare_port = start_mailmoat(workdir / "bare", sink.address, dns.address, content=False)
        uncounted = None
        if args.reputation:
            uncounted, norep_port = start_mailmoat(
                workdir / "norep", sink.address, dns.address, extra=NOT_COUNTED
            )
        try:
            smtp_source(sink.port, 200)  # warm up all of them
            smtp_source(postfix.port, 200)
            wait_until_empty(postfix.queue_dir)
            smtp_source(port, 200)
            smtp_source(bare_port, 200)
            if uncounted is not None:
                smtp_source(norep_port, 200)
            master = postfix.master_pid
            assert master is not None, "Postfix runs without a master.pid"
            targets = {
                "sink": (sink.port, None),
                "postfix": (postfix.port, master),
                "mailmoat": (port, mailmoat.pid),
                "bare": (bare_port, bare.pid),
            }
            if uncounted is not None:
                targets["norep"] = (norep_port, uncounted.pid)
            # The targets take turns, round after round, Postfix and mailmoat
            # in alternating order, so drifts and bursts of other load on this
            # shared box hit them alike; medians printed.
            rounds: list[dict[str, tuple[float, float]]] = []
            drained_after: dict[str, list[float]] = {"postfix": []}
            for number in range(args.rounds):
                order = ["sink", "postfix", "mailmoat", "bare"]
                if number % 2:
                    order[1:3] = ["mailmoat", "postfix"]
                if uncounted is not None:
                    # Next to the counted run, alternating which goes first.
                    at = order.index("mailmoat") + (0 if number % 4 >= 2 else 1)
                    order.insert(at, "norep")
                measured = {}
                for name in order:
                    target_port, pid = targets[name]
                    before = tree_cpu(pid) if pid else 0.0
                    rate = smtp_source(target_port, args.messages)
                    if name == "postfix":
                        # Postfix answers 250 once a message is queued and
                        # relays it afterwards: that work must neither spill
                        # into the next target's turn nor go uncounted.
                        started = time.perf_counter()
                        wait_until_empty(postfix.queue_dir)
                        drained_after["postfix"].append(time.perf_counter() - started)
                    used = (tree_cpu(pid) - before) / args.messages if pid else 0.0
                    measured[name] = (rate, used)
                rounds.append(measured)
            sink.clear()
            base = latencies(sink.port, args.latency)
            ours = latencies(port, args.latency)
        finally:
            for proc in (mailmoat, bare, uncounted):
                if proc is not None:
                    proc.terminate()
                    proc.wait(30)

    def median(name: str, column: int) -> float:
        return statistics.median(r[name][column] for r in rounds)

    ratios = [r["mailmoat"][0] / r["postfix"][0] for r in rounds]
    bare_ratios = [r["bare"][0] / r["postfix"][0] for r in rounds]
    print(f"messages per run: {args.messages}, 20 sessions, 4 KiB, {args.rounds} rounds, medians")
    print("mailmoat / Postfix per round: " + ", ".join(f"{x:.2f}" for x in ratios))
    print(
        "  (Postfix measured first in rounds 1, 3, 5...; its queue emptied in "
        f"{statistics.median(drained_after['postfix']):.2f} s after smtp-source ended, median)"
    )
    print(f"smtp-sink direct          {median('sink', 0):8.0f} msgs/s  (the limit)")
    print(f"Postfix -> smtp-sink      {median('postfix', 0):8.0f} msgs/s  (the peer)")
    print(f"mailmoat -> smtp-sink     {median('mailmoat', 0):8.0f} msgs/s")
    print(f"mailmoat / Postfix        {statistics.median(ratios):8.2f}  (median of the rounds)")
    print(f"mailmoat / smtp-sink      {median('mailmoat', 0) / median('sink', 0):8.2f}")
    print(f"mailmoat, content checks off -> smtp-sink {median('bare', 0):8.0f} msgs/s")
    print(f"  its ratio to Postfix    {statistics.median(bare_ratios):8.2f}")
    print("CPU per message, all processes of each (us):")
    labels = {"postfix": "Postfix", "mailmoat": "mailmoat", "bare": "  content off"}
    for name, label in labels.items():
        print(f"  {label:<14} {median(name, 1) * 1e6:8.0f}")
    if args.reputation:
        print(f"  {'no reputation':<14} {median('norep', 1) * 1e6:8.0f}")
        costs = [r["mailmoat"][1] / r["norep"][1] for r in rounds]
        print(
            "reputation bookkeeping, CPU per message with / without: "
            f"{statistics.median(costs):.3f} (rounds: " + ", ".join(f"{c:.3f}" for c in costs) + ")"
        )
    for label, pct in (("p50", 50.0), ("p99", 99.0)):
        added = (percentile(ours, pct) - percentile(base, pct)) * 1000
        print(f"added latency {label}        {added:8.2f} ms  "
              f"(direct {percentile(base, pct) * 1000:.2f} ms, "
              f"via mailmoat {percentile(ours, pct) * 1000:.2f} ms)")  # fmt: skip
    print(f"mean via mailmoat         {statistics.mean(ours) * 1000:8.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
