"""``mailmoat.metrics``: DNS errors counted by rcode from a real UDP server on
loopback (and logged at DEBUG only), store errors and check failures counted."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.rcode
import pytest

from mailmoat.config import CheckSettings
from mailmoat.core.symbols import Stage
from mailmoat.dns.resolver import CachingResolver
from mailmoat.metrics import METRICS
from mailmoat.store.base import StoreError
from mailmoat.store.recovering import RecoveringStore
from test_pipeline import Crashes, Hangs, make


class _Answering:
    """A UDP DNS server on loopback answering every query with one rcode."""

    def __init__(self, rcode: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.rcode = rcode
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.sock.getsockname()[1]}"

    def _serve(self) -> None:
        while True:
            try:
                data, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            reply = dns.message.make_response(dns.message.from_wire(data))
            reply.set_rcode(self.rcode)
            self.sock.sendto(reply.to_wire(), peer)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def answering() -> Iterator[list[_Answering]]:
    servers: list[_Answering] = []
    yield servers
    for server in servers:
        server.close()


async def test_dns_failures_are_counted_by_rcode_and_logged_at_debug_only(
    answering: list[_Answering], caplog: pytest.LogCaptureFixture
) -> None:
    METRICS.take()
    caplog.set_level(logging.DEBUG, logger="mailmoat.dns")
    for rcode in (dns.rcode.REFUSED, dns.rcode.SERVFAIL):
        server = _Answering(rcode)
        answering.append(server)
        resolver = CachingResolver(nameserver=server.address, timeout=2)
        answer = await resolver.resolve("2.0.0.127.zen.example.test", "A")
        assert answer.status == "servfail"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as mute:
        mute.bind(("127.0.0.1", 0))  # receives, never answers
        silent = CachingResolver(nameserver=f"127.0.0.1:{mute.getsockname()[1]}", timeout=0.2)
        assert (await silent.resolve("x.example.test", "A")).status == "timeout"
    refused = CachingResolver(nameserver="127.0.0.1:9", timeout=0.2)  # nothing listens
    assert (await refused.resolve("y.example.test", "A")).status == "servfail"
    taken = METRICS.take()
    assert taken["m:c|dns_errors|REFUSED"] == 1
    assert taken["m:c|dns_errors|SERVFAIL"] == 1
    assert taken["m:c|dns_errors|timeout"] == 1
    assert taken["m:c|dns_errors|error"] == 1
    dns_records = [r for r in caplog.records if r.name == "mailmoat.dns" and "status=" in r.message]
    assert dns_records and {r.levelno for r in dns_records} == {logging.DEBUG}


async def test_store_errors_and_check_failures_are_counted() -> None:
    METRICS.take()

    def broken() -> RecoveringStore:
        raise StoreError("disk on fire")

    store = RecoveringStore(broken, "disk on fire")
    with pytest.raises(StoreError):
        await store.get("x")
    settings = {"hangs": CheckSettings(timeout=0.05)}
    pipeline, tx = make([Crashes(), Hangs()], checks=settings)
    await pipeline.run(Stage.DATA, tx)
    taken = METRICS.take()
    assert taken["m:c|store_errors|unavailable"] == 1
    assert taken["m:c|check_failures|crashes|error"] == 1
    assert taken["m:c|check_failures|hangs|timeout"] == 1


async def test_learning_on_request_is_counted_by_label(tmp_path: Path) -> None:
    from mailmoat.classify import learn_message
    from mailmoat.config import Config
    from mailmoat.store import open_store

    METRICS.take()
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        message = b"Subject: cheap pills\r\n\r\nBuy cheap pills now.\r\n"
        await learn_message(config=Config(), store=store, message=message, is_spam=True)
        await learn_message(config=Config(), store=store, message=message, is_spam=False)
        await learn_message(config=Config(), store=store, message=message, is_spam=True)
    finally:
        await store.close()
    taken = METRICS.take()
    assert taken["m:c|learn|spam"] == 2 and taken["m:c|learn|ham"] == 1
