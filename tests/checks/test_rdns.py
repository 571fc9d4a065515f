"""Reverse DNS evidence with an in-memory resolver."""

from __future__ import annotations

import pytest

from fakes import FakeResolver, make_config, make_services, new_tx, pipeline_of
from mailmoat.checks.rdns import looks_dynamic
from mailmoat.config import RdnsConfig
from mailmoat.core.symbols import Stage

IP = "198.51.100.7"
PTR = "7.100.51.198.in-addr.arpa"


@pytest.mark.parametrize(
    ("name", "ip", "dynamic"),
    [
        ("198-51-100-7.dsl.example.net", IP, True),
        ("7-100-51-198.cust.example.net", IP, True),
        ("host198.51.100.7.example.net", IP, True),
        ("c63364-07.example.net", "99.51.100.7", False),
        ("198051100007.example.com", IP, True),
        ("c6336407.example.com", IP, True),
        ("dhcp-44.campus.example.edu", IP, True),
        ("ppp12.pool.example.it", IP, True),
        ("www.cablehome.example", IP, False),
        ("mail.cable.example", IP, False),  # the domain, not the host part
        ("mx1.example.org", IP, False),
        ("dynamo.example.org", IP, False),
        ("adsl.provider.example.com", IP, True),
    ],
)
def test_looks_dynamic(name: str, ip: str, dynamic: bool) -> None:
    assert bool(looks_dynamic(name, ip)) is dynamic


async def evidence(
    resolver: FakeResolver, ip: str = IP, **rdns: object
) -> tuple[dict[str, float], str]:
    services = make_services(make_config(rdns=RdnsConfig(**rdns)), resolver=resolver)  # type: ignore[arg-type]
    pipeline = pipeline_of(services, "mailmoat.checks.rdns")
    tx = new_tx(ip)
    await pipeline.run(Stage.CONNECT, tx)
    await pipeline.run(Stage.HELO, tx)
    return {s.name: s.score for s in tx.session.symbols}, tx.session.client_rdns


async def test_confirmed_static_name() -> None:
    resolver = FakeResolver()
    resolver.add(PTR, "PTR", "mx.example.org")
    resolver.add("mx.example.org", "A", "192.0.2.5", IP)
    assert await evidence(resolver) == ({}, "mx.example.org")


async def test_no_ptr() -> None:
    assert await evidence(FakeResolver()) == ({"RDNS_NONE": 1.5}, "")


async def test_not_confirmed() -> None:
    resolver = FakeResolver()
    resolver.add(PTR, "PTR", "forged.example.org")
    resolver.add("forged.example.org", "A", "192.0.2.99")
    assert await evidence(resolver) == ({"RDNS_NOT_CONFIRMED": 1.0}, "forged.example.org")


async def test_second_ptr_name_confirms() -> None:
    resolver = FakeResolver()
    resolver.add(PTR, "PTR", "a.example.org", "b.example.org")
    resolver.add("b.example.org", "A", IP)
    assert await evidence(resolver) == ({}, "b.example.org")


async def test_dynamic_confirmed_name() -> None:
    resolver = FakeResolver()
    resolver.add(PTR, "PTR", "198-51-100-7.dyn.example.net")
    resolver.add("198-51-100-7.dyn.example.net", "A", IP)
    assert (await evidence(resolver))[0] == {"RDNS_DYNAMIC": 1.5}


async def test_extra_pattern() -> None:
    resolver = FakeResolver()
    resolver.add(PTR, "PTR", "zz.bots.example.net")
    resolver.add("zz.bots.example.net", "A", IP)
    found, _ = await evidence(resolver, dynamic_patterns=(r"\.bots\.",))
    assert found == {"RDNS_DYNAMIC": 1.5}


@pytest.mark.parametrize("where", ["ptr", "forward"])
async def test_failures_are_no_evidence(where: str) -> None:
    resolver = FakeResolver()
    if where == "ptr":
        resolver.fail(PTR, "PTR")
    else:
        resolver.add(PTR, "PTR", "slow.example.org")
        resolver.fail("slow.example.org", "A")
    assert (await evidence(resolver))[0] == {"RDNS_UNAVAILABLE": 0.0}


async def test_ipv6_uses_aaaa() -> None:
    resolver = FakeResolver()
    ptr = "1.0.0.0." + "0." * 20 + "8.b.d.0.1.0.0.2.ip6.arpa"
    resolver.add(ptr, "PTR", "v6.example.org")
    resolver.add("v6.example.org", "AAAA", "2001:db8::1")
    assert await evidence(resolver, "2001:db8::1") == ({}, "v6.example.org")


async def test_skipped_networks_are_not_looked_up() -> None:
    resolver = FakeResolver()
    assert await evidence(resolver, "127.0.0.5") == ({}, "")
    assert resolver.queries == []
    assert (await evidence(resolver, "127.0.0.5", skip_networks=()))[0] == {"RDNS_NONE": 1.5}
