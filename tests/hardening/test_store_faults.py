"""Store faults: an unwritable or corrupted store file costs a 451, never a crash.

A write to SQLite's WAL-index mapping (``-shm``) once the file is immutable
used to kill the worker by SIGBUS (with one worker the gateway was gone);
started on a corrupted store file, workers crash-looped while the listening
socket accepted connections that never got a banner. Now, through a real
``mailmoat serve`` with one and with two workers:

- started on a corrupted or immutable store file, every client gets the
  banner and a ``451`` for its message (``store.fail_mode = "tempfail"``),
  the log says why, and no worker dies;
- a store file made immutable while the gateway runs gives ``451`` too, the
  process stays up, and once the file can be written again mail is accepted.

Immutability is ``chattr +i`` (root can write any file whatever its mode);
where the file system does not support it the tests say so and skip (fail
under ``CI=true``).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway_harness import toml_dumps
from mailmoat.store import StoreError
from mailmoat.store.recovering import RecoveringStore
from mailmoat.store.sqlite import SqliteStore
from serve_harness import MailmoatProcess
from servers import free_port, in_ci
from wire_client import RawClient

pytestmark = pytest.mark.integration

# Enough words for the bulk check, which counts fingerprints in the store.
MESSAGE = (
    b"From: Alice <alice@sender.test>\r\n"
    b"To: bob@example.org\r\n"
    b"Subject: store faults\r\n"
    b"Date: Sat, 28 Nov 2026 10:00:00 +0000\r\n"
    b"Message-ID: <store-faults@sender.test>\r\n"
    b"\r\n"
    b"Hello Bob, here are the minutes of the meeting we had on Tuesday about the "
    b"garden, the new fence and the budget for the summer party next month.\r\n"
)


def set_immutable(paths: list[Path], on: bool) -> None:
    for path in paths:
        if path.exists():
            subprocess.run(["chattr", "+i" if on else "-i", str(path)], check=True)


@pytest.fixture
def immutable_files(tmp_path: Path) -> Iterator[list[Path]]:
    """Files the test makes immutable; always made mutable again."""
    probe = tmp_path / "probe"
    probe.write_text("x")
    done = subprocess.run(["chattr", "+i", str(probe)], capture_output=True, text=True)
    if done.returncode != 0:
        reason = f"chattr +i not supported here: {done.stderr.strip()}"
        if in_ci():
            pytest.fail(reason)
        pytest.skip(reason)
    subprocess.run(["chattr", "-i", str(probe)], check=True)
    paths: list[Path] = []
    try:
        yield paths
    finally:
        set_immutable([*paths, probe], False)


class Serve(MailmoatProcess):
    def __init__(self, tmp_path: Path, workers: int) -> None:
        super().__init__(tmp_path, "serve", free_port())
        self.workers = workers
        self.store = tmp_path / "store.db"
        self.config_path.write_text(
            toml_dumps(
                {
                    "smtp": {
                        "listen": f"127.0.0.1:{self.port}",
                        "workers": workers,
                        "shutdown_grace": 2,
                    },
                    "relay": {"domains": ["example.org"]},
                    "store": {"url": f"sqlite:///{self.store}", "fail_mode": "tempfail"},
                    "ratelimit": {"exempt": []},
                    "pregreet": {"delay": 0},
                    "web": {"enabled": False},
                    "dns": {"nameserver": "127.0.0.1:9", "timeout": 0.2},
                    "checks": {n: {"enabled": False} for n in ("helo", "spf", "rdns")},
                }
            )
        )

    def files(self) -> list[Path]:
        return [self.store, Path(f"{self.store}-wal"), Path(f"{self.store}-shm")]

    def start_serving(self) -> Serve:
        return self.start(listeners=self.workers, timeout=30)

    def send(self) -> str:
        """The final reply to one message (or the refusal before DATA)."""
        client = RawClient(self.port)
        try:
            assert client.banner.startswith("220 "), client.banner
            client.command("EHLO client.sender.test")
            for command in ("MAIL FROM:<alice@sender.test>", "RCPT TO:<bob@example.org>"):
                reply: str = client.command(command)
                if not reply.startswith("250"):
                    return reply
            reply = client.command("DATA")
            if not reply.startswith("354"):
                return reply
            final: str = client.command(MESSAGE + b".")
            client.command("QUIT")
            return final
        finally:
            client.close()


@pytest.fixture(params=[1, 2], ids=["one-worker", "two-workers"])
def serve(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Serve]:
    with Serve(tmp_path, request.param) as running:
        yield running


def assert_tempfails_and_lives(serve: Serve, rounds: int = 3) -> None:
    for _ in range(rounds):
        reply = serve.send()
        assert reply.startswith("451"), (reply, serve.output())
    assert serve.alive(), serve.output()
    assert "ended unexpectedly" not in serve.output()
    assert "Traceback" not in serve.output()


def test_started_on_a_corrupted_store_every_client_gets_a_banner_and_451(
    serve: Serve,
) -> None:
    serve.store.write_bytes(b"this is no SQLite database, it was overwritten\n" * 200)
    serve.start_serving()
    assert_tempfails_and_lives(serve)
    assert "store cannot be opened" in serve.output()


def test_started_on_an_immutable_store_every_client_gets_a_banner_and_451(
    serve: Serve, immutable_files: list[Path]
) -> None:
    SqliteStore(serve.store)  # a good store file, WAL files included
    immutable_files.extend(serve.files())
    set_immutable(immutable_files, True)
    serve.start_serving()
    assert_tempfails_and_lives(serve)
    assert "cannot be written" in serve.output()


def test_a_store_made_immutable_while_running_gives_451_not_sigbus(
    serve: Serve, immutable_files: list[Path]
) -> None:
    serve.start_serving()
    assert serve.send().startswith("250"), serve.output()
    immutable_files.extend(serve.files())
    set_immutable(immutable_files, True)
    assert_tempfails_and_lives(serve, rounds=4)
    set_immutable(immutable_files, False)
    assert serve.send().startswith("250"), serve.output()
    assert serve.alive()


def test_a_store_that_recovers_is_used_again(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    path.write_bytes(b"garbage" * 100)
    now = [0.0]

    def reopen() -> SqliteStore:
        return SqliteStore(path)

    store = RecoveringStore(reopen, "corrupt", retry_seconds=5, clock=lambda: now[0])

    async def use() -> int:
        return int(await store.incr("k", 1, 60))

    with pytest.raises(StoreError, match="store unavailable"):
        asyncio.run(use())
    path.unlink()
    with pytest.raises(StoreError):  # not retried before retry_seconds
        asyncio.run(use())
    now[0] = 6.0
    assert asyncio.run(use()) == 1 and store.available


def test_a_command_reading_a_corrupted_store_says_so_without_a_traceback(tmp_path: Path) -> None:
    store = tmp_path / "store.db"
    store.write_bytes(b"garbage" * 100)
    config = tmp_path / "mailmoat.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{store}"\n')
    done = subprocess.run(
        [sys.executable, "-m", "mailmoat", "stats", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done
    assert "Traceback" not in done.stderr
    assert "mailmoat: store error: " in done.stderr and "not a database" in done.stderr
