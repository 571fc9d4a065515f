"""Dropping root: the ``[process]`` user and group.

Contract: ``account_problems(settings)`` names a ``process.user`` or
``process.group`` that does not exist (the config validation path, so
``mailmoat config --check`` and every serving command refuse to start with
one line naming it). ``dropping(settings)`` says whether this process will
switch accounts (it runs as root and a user or group is set); the
commands then bind their listener first (``bind_socket`` for the fronts).
``drop_privileges(config)`` is called once the listeners are bound and
before anything else is opened: it creates the state directories that do
not exist yet (``delivery.maildir``, ``quarantine.directory``, the SQLite
store's directory) owned by the target account, switches the supplementary
groups, the group and the user (``initgroups``/``setgid``/``setuid``, so
forked workers inherit it), checks root cannot be regained, and checks the
state it will write is writable (SQLite files a front opened as root
are handed over); a problem raises ``ConfigError`` naming
the key. Not running as root, it does nothing (an unprivileged user cannot
switch) beyond one log line when an account was asked for.
"""

from __future__ import annotations

import grp
import logging
import os
import pwd
import socket
from dataclasses import dataclass
from pathlib import Path

from mailmoat.config.loader import ConfigError
from mailmoat.config.sections import Config, ProcessConfig

log = logging.getLogger("mailmoat.process")


@dataclass(frozen=True)
class Account:
    user: str
    uid: int
    gid: int
    home: str


def account_problems(settings: ProcessConfig) -> list[str]:
    problems: list[str] = []
    if settings.user:
        try:
            pwd.getpwnam(settings.user)
        except KeyError:
            problems.append(f"process.user: no such user {settings.user!r}")
    if settings.group:
        try:
            grp.getgrnam(settings.group)
        except KeyError:
            problems.append(f"process.group: no such group {settings.group!r}")
    return problems


def account_of(settings: ProcessConfig) -> Account:
    """The uid and gid to run as (the user's login group without ``group``)."""
    problems = account_problems(settings)
    if problems:
        raise ConfigError(*problems)
    if settings.user:
        entry = pwd.getpwnam(settings.user)
        uid, gid, user, home = entry.pw_uid, entry.pw_gid, entry.pw_name, entry.pw_dir
    else:
        uid, gid, user, home = os.getuid(), os.getgid(), "root", os.environ.get("HOME", "/")
    if settings.group:
        gid = grp.getgrnam(settings.group).gr_gid
    return Account(user, uid, gid, home)


def dropping(settings: ProcessConfig) -> bool:
    return os.geteuid() == 0 and bool(settings.user or settings.group)


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (bound before the drop)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1024)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def state_paths(config: Config) -> list[tuple[str, Path]]:
    """The directories the gateway writes, by config key."""
    paths = [
        ("delivery.maildir", Path(config.delivery.maildir)),
        ("quarantine.directory", Path(config.quarantine.directory)),
    ]
    url = config.store.url
    if url.startswith("sqlite://"):
        rest = url.removeprefix("sqlite://")
        if rest not in (":memory:", "/:memory:"):
            database = Path(rest[1:] if rest.startswith("/") else rest)
            paths.append(("store.url", database.parent))
    return paths


def _database_files(config: Config) -> list[Path]:
    """The SQLite store's files (a front may have opened it as root)."""
    url = config.store.url
    if not url.startswith("sqlite://") or url.endswith(":memory:"):
        return []
    rest = url.removeprefix("sqlite://")
    database = Path(rest[1:] if rest.startswith("/") else rest)
    return [database, Path(f"{database}-wal"), Path(f"{database}-shm")]


def _make_owned(path: Path, account: Account) -> None:
    """Create ``path`` and its missing parents, each owned by ``account``."""
    missing: list[Path] = []
    current = path.absolute()
    while not current.exists():
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        directory.mkdir(mode=0o750)
        os.chown(directory, account.uid, account.gid)


def drop_privileges(config: Config) -> None:
    settings = config.process
    if not (settings.user or settings.group):
        return
    if os.geteuid() != 0:
        log.info("process.user/group ignored: not started as root (uid %d)", os.geteuid())
        return
    account = account_of(settings)
    for _key, path in state_paths(config):
        _make_owned(path, account)
    for database in _database_files(config):
        if database.exists() and database.stat().st_uid == 0:
            os.chown(database, account.uid, account.gid)
    os.setgroups([])
    if settings.user:
        os.initgroups(account.user, account.gid)
    else:
        os.setgroups([account.gid])
    os.setgid(account.gid)
    os.setuid(account.uid)
    # As su does: caches (the rules', under ~/.cache) follow the account.
    os.environ.update(HOME=account.home, USER=account.user, LOGNAME=account.user)
    try:
        os.setuid(0)
    except PermissionError:
        pass
    else:  # pragma: no cover - the kernel refused to drop
        raise ConfigError(f"process.user: still able to regain root as {account.user!r}")
    problems = [
        f"{key}: {str(path)!r} is not writable by user {account.user!r} (chown it)"
        for key, path in state_paths(config)
        if not os.access(path, os.W_OK | os.X_OK)
    ]
    problems += [
        f"store.url: {str(path)!r} is not writable by user {account.user!r} (chown it)"
        for path in _database_files(config)
        if path.exists() and not os.access(path, os.W_OK)
    ]
    if problems:
        raise ConfigError(*problems)
    log.info("running as user %s (uid %d, gid %d)", account.user, account.uid, account.gid)
