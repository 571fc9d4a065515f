"""SIGHUP on a running ``mailmoat serve``: a new upstream takes every new
transaction, a bad certificate keeps the old runtime whole, and reloads
leak nothing.

Before the fix pooled upstream connections kept carrying mail to the old
``relay.upstream`` (54 of 59 messages in the next 30 s), and a certificate
that could not be loaded raised in the signal handler half-way through,
leaving the gateway without STARTTLS.
"""

from __future__ import annotations

import os
import smtplib
import ssl
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from gateway_harness import GatewayThread, self_signed_certificate, toml_dumps
from serve_harness import MailmoatProcess
from servers import SmtpSink, free_port

pytestmark = pytest.mark.integration

WORKERS = 2


class Serve(MailmoatProcess):
    """``mailmoat serve`` with ``WORKERS`` workers and a config to rewrite."""

    def __init__(self, tmp_path: Path, sections: dict[str, dict[str, Any]]) -> None:
        super().__init__(tmp_path, "serve", free_port())
        self.write(sections)
        self.start(listeners=WORKERS)

    def write(self, sections: dict[str, dict[str, Any]]) -> None:
        base: dict[str, dict[str, Any]] = {
            "smtp": {
                "listen": f"127.0.0.1:{self.port}",
                "hostname": "mx.mailmoat.test",
                "workers": WORKERS,
                "shutdown_grace": 5,
            },
            "web": {"enabled": False},
            "relay": {"domains": ["example.org"]},
            "pregreet": {"delay": 0},
            "store": {"url": f"sqlite:///{self.directory / 'store.db'}"},
            "dns": {"nameserver": "127.0.0.1:9", "timeout": 0.2},
        }
        for name, table in sections.items():
            base.setdefault(name, {}).update(table)
        self.config_path.write_text(toml_dumps(base))

    def reload(self, text: str = "reloaded config") -> None:
        self.hangup(text, times=WORKERS)

    def workers(self) -> list[int]:
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return [int(pid) for pid in children.read_text().split()]


@pytest.fixture
def sinks() -> Iterator[tuple[SmtpSink, SmtpSink]]:
    with SmtpSink(hostname="old.sink") as old, SmtpSink(hostname="new.sink") as new:
        yield old, new


def _message(number: int) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "a@sender.test"
    message["To"] = "someone@example.org"
    message["Subject"] = f"message {number}"
    message.set_content(f"body {number}\n")
    return message


def _send(port: int, number: int) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as client:
        client.ehlo("client.sender.test")
        client.send_message(_message(number))


def _subjects(sink: SmtpSink) -> set[str]:
    found = set()
    for message in sink.messages():
        for line in message.data.split(b"\r\n"):
            if line.startswith(b"Subject: "):
                found.add(line[9:].decode())
    return found


def test_after_sighup_every_new_transaction_goes_to_the_new_upstream(
    tmp_path: Path, sinks: tuple[SmtpSink, SmtpSink]
) -> None:
    old, new = sinks
    with Serve(tmp_path, {"relay": {"upstream": old.address}}) as serve:
        # A long-lived client and a stream of short ones fill the pools.
        held = smtplib.SMTP("127.0.0.1", serve.port, timeout=20)
        held.ehlo("held.sender.test")
        held.send_message(_message(0))
        for number in range(1, 9):
            _send(serve.port, number)
        old.wait_messages(9)
        serve.write({"relay": {"upstream": new.address}})
        serve.reload()
        held.send_message(_message(100))
        for number in range(101, 121):
            _send(serve.port, number)
        held.quit()
        new.wait_messages(21)
        after = {f"message {n}" for n in range(100, 121)}
        assert _subjects(new) == after
        assert not after & _subjects(old), "a message went to the old upstream after reload"


def test_sighup_under_load_loses_nothing_and_switches_upstream(
    tmp_path: Path, sinks: tuple[SmtpSink, SmtpSink]
) -> None:
    """Four clients sending without pause while SIGHUP switches upstream:
    every message gets 250 and is delivered once; every message begun after
    both workers logged the reload goes to the new upstream."""
    import threading

    old, new = sinks
    serve = Serve(tmp_path, {"relay": {"upstream": old.address}})
    replies: list[tuple[int, float, int]] = []  # (number, begun, code)
    stop = threading.Event()
    lock = threading.Lock()
    counter = iter(range(1000, 100_000))

    def sender() -> None:
        while not stop.is_set():
            with lock:
                number = next(counter)
            begun = time.monotonic()
            with smtplib.SMTP("127.0.0.1", serve.port, timeout=20) as client:
                client.ehlo("load.sender.test")
                refused = client.send_message(_message(number))
            replies.append((number, begun, 250 if not refused else 0))

    threads = [threading.Thread(target=sender) for _ in range(4)]
    try:
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        serve.write({"relay": {"upstream": new.address}})
        serve.reload()
        reloaded = time.monotonic()
        time.sleep(1.5)
        stop.set()
        for thread in threads:
            thread.join(30)
        sent = {f"message {n}" for n, _begun, code in replies if code == 250}
        assert len(sent) == len(replies) > 20
        after = {f"message {n}" for n, begun, _code in replies if begun > reloaded}
        assert after, "no message was sent after the reload"
        new.wait_messages(len(after))
        deadline = time.monotonic() + 10
        while _subjects(old) | _subjects(new) != sent and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _subjects(old) | _subjects(new) == sent, "a message was lost"
        assert not _subjects(old) & _subjects(new), "a message was delivered twice"
        assert after <= _subjects(new), sorted(after & _subjects(old))
    finally:
        stop.set()
        serve.stop()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


def _starttls_works(port: int, cert: Path) -> None:
    context = ssl.create_default_context(cafile=str(cert))
    context.check_hostname = False
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as client:
        client.ehlo("client.sender.test")
        assert client.has_extn("starttls"), "STARTTLS no longer offered"
        client.starttls(context=context)
        code, _ = client.ehlo("client.sender.test")
        assert code == 250


@pytest.mark.parametrize("broken", ["missing", "garbage"])
def test_a_bad_certificate_on_reload_keeps_the_whole_old_runtime(
    tmp_path: Path, certificate: tuple[Path, Path], broken: str
) -> None:
    cert, key = certificate
    with Serve(tmp_path, {"smtp": {"tls_cert": str(cert), "tls_key": str(key)}}) as serve:
        _starttls_works(serve.port, cert)
        bad = tmp_path / "bad.pem"
        if broken == "garbage":
            bad.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n")
        # Also changes relay.domains: a partial reload would apply it.
        serve.write(
            {
                "smtp": {"tls_cert": str(bad), "tls_key": str(key)},
                "relay": {"domains": ["other.test"]},
            }
        )
        serve.reload("reload failed")
        failures = [line for line in serve.output().splitlines() if "reload failed" in line]
        assert len(failures) == WORKERS, "one error line per worker"
        assert "Traceback" not in serve.output()
        for _ in range(4):  # both workers
            _starttls_works(serve.port, cert)
            with smtplib.SMTP("127.0.0.1", serve.port, timeout=20) as client:
                client.ehlo("client.sender.test")
                client.mail("a@sender.test")
                assert client.rcpt("x@other.test")[0] == 554, "new relay.domains applied"
                assert client.rcpt("x@example.org")[0] == 250
        # Fixing the file and reloading again applies the new config.
        serve.write({"smtp": {"tls_cert": str(cert), "tls_key": str(key)}})
        serve.reload()
        _starttls_works(serve.port, cert)


def _fd_links(pid: int) -> list[str]:
    links = []
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            links.append(os.readlink(f"/proc/{pid}/fd/{name}"))
        except FileNotFoundError:
            continue
    return sorted(links)


def test_ten_reloads_leak_no_file_descriptor(
    tmp_path: Path, sinks: tuple[SmtpSink, SmtpSink]
) -> None:
    old, _new = sinks
    with Serve(tmp_path, {"relay": {"upstream": old.address}}) as serve:
        # Warm up: both workers have served mail and reloaded once.
        for number in range(6):
            _send(serve.port, number)
        serve.reload()
        time.sleep(0.5)  # idle upstreams quit in the background
        before = {pid: _fd_links(pid) for pid in serve.workers()}
        for number in range(10):
            _send(serve.port, 10 + number)
            _send(serve.port, 20 + number)
            serve.reload()
        # Closing connections and QUITs in the background take a moment.
        deadline = time.monotonic() + 10
        while True:
            after = {pid: _fd_links(pid) for pid in serve.workers()}
            grown = {pid: links for pid, links in after.items() if len(links) > len(before[pid])}
            if not grown or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert not grown, (before, after)
        old.wait_messages(26)


def test_ten_reloads_leave_one_pipeline_and_no_extra_task_or_fd(tmp_path: Path) -> None:
    """The whole ``serve`` runtime (statistics, model sync, autolearn,
    dashboard): ten SIGHUPs leave one pipeline and one classifier check,
    all reading the one model holder, and no extra task or descriptor."""
    import asyncio
    import gc
    import os

    from mailmoat.checks.classifier import ClassifierCheck
    from mailmoat.pipeline import Pipeline

    overrides = {"web": {"listen": "127.0.0.1:0"}}
    with GatewayThread(tmp_path, overrides, door="serve") as running:
        gateway = running.gateway
        assert gateway is not None
        runtime = gateway.runtime
        assert runtime.recorder and runtime.model_sync and runtime.learner and runtime.dashboard
        assert runtime.reputation is not None

        async def census() -> tuple[int, int, int, int, int, int]:
            gc.collect()
            alive = gc.get_objects()
            pipelines = sum(isinstance(o, Pipeline) for o in alive)
            checks = [o for o in alive if isinstance(o, ClassifierCheck)]
            assert all(c.holder is runtime.services.model for c in checks)
            tasks = len(asyncio.all_tasks()) - 1
            fds = len(os.listdir("/proc/self/fd"))
            observers = len(runtime.services.verdict_observers)
            return pipelines, len(checks), observers, tasks, fds, len(gateway.pipeline.recorders)

        async def reload() -> None:
            gateway.reload()

        first = running.call(census())
        for _ in range(10):
            running.call(reload())
        running.call(asyncio.sleep(0.2))
        assert running.call(census()) == first
        assert first[:3] == (1, 1, 2)  # observers: autolearn and campaigns
