"""What the dashboard shows and stores stays private: file modes, secrets.

Quarantined mail and the SQLite store (history: addresses, subjects) are
created 0600 in 0700 directories whatever the umask, and older world-readable
ones are tightened; ``mailmoat config`` and the config page never print a
password, including one inside ``store.url``.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from mailmoat.commands.config import render
from mailmoat.config import Config, StoreConfig, load_config
from mailmoat.config.redact import redact_url
from mailmoat.delivery.quarantine import Quarantine
from mailmoat.store import SqliteStore, open_store
from mailmoat.web.pages import redacted_config

MESSAGE = b"From: a@sender.example\r\nSubject: private\r\n\r\nbody\r\n"
REDIS_PASSWORD = "hunter2-redis-pass"


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The usual daemon umask, which made everything world-readable."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_quarantine_files_are_private(tmp_path: Path, open_umask: None) -> None:
    root = tmp_path / "spool" / "quarantine"
    box = Quarantine(root)
    message_id = await box.put(MESSAGE, {"queue_id": "Q1", "subject": "private"})
    assert _mode(root) == 0o700
    for sub in ("tmp", "new", "cur"):
        assert _mode(root / sub) == 0o700, sub
    assert _mode(root / "new" / message_id) == 0o600
    assert _mode(root / "new" / f"{message_id}.json") == 0o600


async def test_world_readable_quarantine_is_tightened(tmp_path: Path, open_umask: None) -> None:
    root = tmp_path / "q"
    for sub in ("", "tmp", "new", "cur"):
        (root / sub).mkdir(mode=0o755, exist_ok=True)
    Quarantine(root)
    assert _mode(root) == 0o700 and _mode(root / "new") == 0o700


async def test_sqlite_store_is_private(tmp_path: Path, open_umask: None) -> None:
    path = tmp_path / "state" / "mailmoat.db"
    store = SqliteStore(path)
    await store.set("k", b"v", 60)
    try:
        assert _mode(path.parent) == 0o700
        for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            assert _mode(name) == 0o600, name
    finally:
        await store.close()


async def test_world_readable_store_is_tightened(tmp_path: Path, open_umask: None) -> None:
    path = tmp_path / "old.db"
    first = SqliteStore(path)
    await first.set("k", b"v", 60)
    await first.close()
    os.chmod(path, 0o644)
    store = open_store(f"sqlite:///{path}")
    try:
        assert _mode(path) == 0o600
        assert await store.get("k") == b"v"
    finally:
        await store.close()


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"redis://:{REDIS_PASSWORD}@127.0.0.1:6379/0", "redis://:<hidden>@127.0.0.1:6379/0"),
        (f"redis://mm:{REDIS_PASSWORD}@[::1]:6379/2?prefix=mm:", "redis://mm:<hidden>@[::1]:6379/2?prefix=mm:"),
        (f"rediss://{REDIS_PASSWORD}@redis.example:6380/0", "rediss://<hidden>@redis.example:6380/0"),
        (f"redis://127.0.0.1/0?password={REDIS_PASSWORD}&timeout=1", "redis://127.0.0.1/0?password=<hidden>&timeout=1"),
        ("sqlite:///var/mailmoat.db", "sqlite:///var/mailmoat.db"),
        ("sqlite:////abs/path.db", "sqlite:////abs/path.db"),
    ],
)  # fmt: skip
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def _config_file(tmp_path: Path) -> Path:
    path = tmp_path / "mailmoat.toml"
    path.write_text(
        "[store]\n"
        f'url = "redis://:{REDIS_PASSWORD}@127.0.0.1:6379/0?prefix=mm:"\n'
        "[web]\n"
        'password_hash = "scrypt$16384$8$1$c2FsdA==$aGFzaA=="\n'
        'secret_key = "cookie-signing-secret"\n'
    )
    return path


def test_mailmoat_config_prints_no_secret(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mailmoat", "config", "--config", str(_config_file(tmp_path))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for secret in (REDIS_PASSWORD, "scrypt$", "cookie-signing-secret"):
        assert secret not in out and secret not in done.stderr
    assert 'url = "redis://:<hidden>@127.0.0.1:6379/0?prefix=mm:"' in out
    assert 'password_hash = "<hidden>"' in out and 'secret_key = "<hidden>"' in out


def test_rendered_config_without_secrets_is_unchanged(tmp_path: Path) -> None:
    config = replace(Config(), store=StoreConfig(url="sqlite:////srv/mailmoat/state.db"))
    assert 'url = "sqlite:////srv/mailmoat/state.db"' in render(config)


def test_config_page_hides_store_password(tmp_path: Path) -> None:
    config = load_config(_config_file(tmp_path))
    shown = repr(redacted_config(config))
    assert REDIS_PASSWORD not in shown and "cookie-signing-secret" not in shown
    assert "redis://:<hidden>@127.0.0.1:6379/0" in shown
