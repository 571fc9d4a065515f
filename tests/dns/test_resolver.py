"""CachingResolver against a real authoritative server (NSD) on loopback."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Iterator

import pytest

from fakes import FakeClock
from mailmoat.dns import CachingResolver, reverse_name
from servers import Nsd

pytestmark = pytest.mark.integration

ZONE = """
$TTL 30
@    600 IN SOA ns.dns.test. hostmaster.dns.test. 1 3600 600 86400 120
@        IN NS  ns.dns.test.
ns       IN A   127.0.0.1
short    IN A   192.0.2.1
long 86400 IN A 192.0.2.2
multi    IN A   192.0.2.3
multi    IN A   192.0.2.4
text     IN TXT "v=spf1 " "-all"
mail     IN MX  10 mx.dns.test.
alias    IN CNAME short
big      IN TXT BIG_TXT
"""
# 750 bytes of TXT: more than fits a 512-byte UDP answer, so it comes over TCP.
ZONE = ZONE.replace("BIG_TXT", " ".join(f'"{c * 250}"' for c in "xyz"))
REVERSE = """
$TTL 300
@ IN SOA ns.dns.test. hostmaster.dns.test. 1 3600 600 86400 120
@ IN NS ns.dns.test.
1 IN PTR host.dns.test.
"""


@pytest.fixture
def nsd(nsd_factory: Callable[..., Nsd]) -> Nsd:
    return nsd_factory({"dns.test": ZONE, "2.0.192.in-addr.arpa": REVERSE})


def make(nsd: Nsd, clock: FakeClock | None = None, timeout: float = 2.0) -> CachingResolver:
    return CachingResolver(
        f"127.0.0.1:{nsd.port}", timeout=timeout, clock=clock or FakeClock(1000.0)
    )


@pytest.mark.parametrize(
    ("name", "rdtype", "status", "records", "ttl"),
    [
        ("short.dns.test", "A", "ok", ("192.0.2.1",), 60),  # TTL 30 clamped up to 60
        ("long.dns.test", "A", "ok", ("192.0.2.2",), 3600),  # 1 day clamped down to 1 h
        ("text.dns.test", "TXT", "ok", ("v=spf1 -all",), 60),
        ("mail.dns.test", "MX", "ok", ("10 mx.dns.test",), 60),
        ("1.2.0.192.in-addr.arpa", "PTR", "ok", ("host.dns.test",), 300),
        ("missing.dns.test", "A", "nxdomain", (), 120),  # SOA minimum 120 (RFC 2308)
        ("short.dns.test", "AAAA", "nodata", (), 120),
        ("SHORT.dns.test.", "A", "ok", ("192.0.2.1",), 60),  # case and final dot
        ("alias.dns.test", "A", "ok", ("192.0.2.1",), 60),  # CNAME followed
        ("big.dns.test", "TXT", "ok", ("x" * 250 + "y" * 250 + "z" * 250,), 60),  # TC -> TCP
    ],
    ids=[
        "ok-min-ttl",
        "ok-max-ttl",
        "txt",
        "mx",
        "ptr",
        "nxdomain",
        "nodata",
        "case",
        "cname",
        "truncated",
    ],
)
async def test_answers(
    nsd: Nsd, name: str, rdtype: str, status: str, records: tuple[str, ...], ttl: int
) -> None:
    answer = await make(nsd).resolve(name, rdtype)
    assert (answer.status, answer.records, answer.ttl) == (status, records, ttl)


async def test_multiple_records(nsd: Nsd) -> None:
    answer = await make(nsd).resolve("multi.dns.test", "A")
    assert sorted(answer.records) == ["192.0.2.3", "192.0.2.4"]


async def test_refused_zone_is_servfail_and_not_cached(nsd: Nsd) -> None:
    resolver = make(nsd)
    assert (await resolver.resolve("example.invalid", "A")).status == "servfail"
    await resolver.resolve("example.invalid", "A")
    assert resolver.queries == 2


async def test_cache_honours_clamped_ttl(nsd: Nsd) -> None:
    clock = FakeClock(1000.0)
    resolver = make(nsd, clock)
    for _ in range(3):
        assert (await resolver.resolve("short.dns.test", "A")).ok
        assert (await resolver.resolve("missing.dns.test", "A")).status == "nxdomain"
    assert resolver.queries == 2
    clock.advance(59)
    await resolver.resolve("short.dns.test", "A")
    assert resolver.queries == 2
    clock.advance(2)  # positive entry (60 s) expired, negative (120 s) not yet
    await resolver.resolve("short.dns.test", "A")
    await resolver.resolve("missing.dns.test", "A")
    assert resolver.queries == 3
    clock.advance(60)
    await resolver.resolve("missing.dns.test", "A")
    assert resolver.queries == 4


async def test_identical_queries_in_flight_share_one(nsd: Nsd) -> None:
    resolver = make(nsd)
    answers = await asyncio.gather(*(resolver.resolve("multi.dns.test", "A") for _ in range(50)))
    assert {a.status for a in answers} == {"ok"}
    assert resolver.queries == 1


async def test_cache_size_is_bounded(nsd: Nsd) -> None:
    resolver = CachingResolver(f"127.0.0.1:{nsd.port}", cache_size=2, clock=FakeClock())
    for name in ("short", "long", "multi", "text"):
        await resolver.resolve(f"{name}.dns.test", "A")
    assert len(resolver._cache) == 2
    assert resolver.cached("multi.dns.test", "A") is not None


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A UDP port on loopback that receives queries and never answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield int(sock.getsockname()[1])
    finally:
        sock.close()


async def test_timeout(silent_port: int) -> None:
    resolver = CachingResolver(f"127.0.0.1:{silent_port}", timeout=0.5)
    started = time.monotonic()
    answer = await resolver.resolve("anything.test", "A")
    elapsed = time.monotonic() - started
    assert answer.status == "timeout" and answer.failed
    assert 0.4 < elapsed < 1.5
    assert resolver.cached("anything.test", "A") is None


def test_reverse_name() -> None:
    assert reverse_name("192.0.2.1") == "1.2.0.192.in-addr.arpa"
    assert reverse_name("192.0.2.1", "zen.test") == "1.2.0.192.zen.test"
    assert reverse_name("2001:db8::1") == "1.0.0.0." + "0." * 20 + "8.b.d.0.1.0.0.2.ip6.arpa"
    assert reverse_name("2001:db8::1", "bl.test").endswith(".8.b.d.0.1.0.0.2.bl.test")
