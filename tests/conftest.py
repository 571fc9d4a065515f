"""Shared pytest fixtures for mailmoat's tests."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

from servers import Nsd, Postfix, Rbldnsd, Redis, Server, SmtpSink  # real-server fixtures

# Symbols added by mailmoat's code must be declared by a check's spec.
pytest_plugins = ("symbol_guard", "log_guard")

# No DNS query may leave the machine: checks that a test builds without an
# explicit [dns] nameserver use this loopback port, where nothing answers
# (the resolver then reports a timeout). Subprocesses inherit it.
os.environ.setdefault("MAILMOAT_NAMESERVER", "127.0.0.1:9")


@pytest.fixture(scope="session", autouse=True)
def _rules_loaded_once() -> None:
    """The default rule set (SpamAssassin's stock rules included) is loaded once,
    before any test: its multi-pattern databases compile once (tens of seconds
    on a cold cache) and are cached on disk, so no timed test or test server
    pays for that."""
    from mailmoat.config import RulesConfig
    from mailmoat.rules.sources import load_configured

    load_configured(RulesConfig())


# ============================================================================================
# BEGIN real-server fixtures (tests/servers.py) - function scoped, each stops what it starts.
# Servers bind 127.0.0.1 on free ports; missing binaries skip locally, fail under CI=true.
# ============================================================================================
_S = TypeVar("_S", bound=Server)


class _Started:
    """Starts servers on demand and stops all of them at teardown."""

    def __init__(self) -> None:
        self.servers: list[Server] = []

    def add(self, server: _S) -> _S:
        self.servers.append(server)
        server.start()
        return server

    def stop_all(self) -> None:
        for server in reversed(self.servers):
            server.stop()


@pytest.fixture
def _servers() -> Iterator[_Started]:
    started = _Started()
    try:
        yield started
    finally:
        started.stop_all()


@pytest.fixture
def smtp_sink(_servers: _Started) -> SmtpSink:
    """A started smtp-sink accepting everything; ``.messages()`` returns what it got."""
    return _servers.add(SmtpSink())


@pytest.fixture
def smtp_sink_factory(_servers: _Started) -> Callable[..., SmtpSink]:
    """``smtp_sink_factory(hard_reject=["RCPT"], ...)`` -> started SmtpSink."""
    return lambda **kwargs: _servers.add(SmtpSink(**kwargs))


@pytest.fixture
def postfix_factory(_servers: _Started) -> Callable[..., Postfix]:
    """``postfix_factory(relayhost=sink.address, main_cf={...})`` -> started Postfix."""
    return lambda **kwargs: _servers.add(Postfix(**kwargs))


@pytest.fixture
def rbldnsd_factory(_servers: _Started) -> Callable[..., Rbldnsd]:
    """``rbldnsd_factory({"zen.test": ("ip4set", "...")})`` -> started Rbldnsd."""

    def make(zones: Any, **kwargs: Any) -> Rbldnsd:
        return _servers.add(Rbldnsd(zones, **kwargs))

    return make


@pytest.fixture
def nsd_factory(_servers: _Started) -> Callable[..., Nsd]:
    """``nsd_factory({"example.test": 'example.test. IN TXT "v=spf1 -all"'})`` -> started Nsd."""

    def make(zones: Any, **kwargs: Any) -> Nsd:
        return _servers.add(Nsd(zones, **kwargs))

    return make


@pytest.fixture
def redis_server(_servers: _Started) -> Redis:
    """A started, empty redis-server; ``.url``, ``.pause()``, ``.kill()``, ``.restart()``."""
    return _servers.add(Redis())


# ============================================================================================
# END real-server fixtures
# ============================================================================================
