"""DNSBL/DNSWL weighing with an in-memory resolver."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from fakes import FakeResolver, make_config, make_services, new_tx, pipeline_of
from mailmoat.checks.dnsbl import SiteError, parse_site, parse_sites
from mailmoat.config import DnsblConfig
from mailmoat.core.symbols import Action, Stage

SITES = (
    "zen.test=127.0.0.[2..11]*3",
    "bl.test*1",
    "SPAMCOP:spamcop.test=127.0.0.2",
    "list.dnswl.test=127.0.[0..255].[1..3]*-2",
)


@pytest.mark.parametrize(
    ("spec", "name", "zone", "weight", "matches", "misses"),
    [
        (
            "zen.spamhaus.org=127.0.0.[2..11]*3",
            "ZEN_SPAMHAUS",
            "zen.spamhaus.org",
            3.0,
            ["127.0.0.2", "127.0.0.11"],
            ["127.0.0.1", "127.0.0.12", "127.0.1.2"],
        ),
        (
            "list.dnswl.org=127.0.[0..255].[1..3]*-2",
            "LIST_DNSWL",
            "list.dnswl.org",
            -2.0,
            ["127.0.15.1", "127.0.0.3"],
            ["127.0.0.0", "127.0.5.4"],
        ),
        (
            "bl.example=127.0.0.[2;4;6..7]",
            "BL",
            "bl.example",
            1.0,
            ["127.0.0.2", "127.0.0.4", "127.0.0.7"],
            ["127.0.0.3", "127.0.0.5"],
        ),
        ("MINE:b.example.net", "MINE", "b.example.net", 1.0, ["127.0.0.1", "10.0.0.1"], []),
        ("b.example*0.5", "B", "b.example", 0.5, ["127.0.0.2"], []),
    ],
    ids=["zen", "dnswl", "list", "named-no-filter", "fractional"],
)
def test_parse_site(
    spec: str, name: str, zone: str, weight: float, matches: list[str], misses: list[str]
) -> None:
    site = parse_site(spec)
    assert (site.name, site.zone, site.weight) == (name, zone, weight)
    assert all(site.matches(a) for a in matches)
    assert not any(site.matches(a) for a in misses)


@pytest.mark.parametrize(
    "spec", ["zen", "zen.test=127.0.0", "zen.test=127.0.0.[2..300]", "zen.test=1.2.3.[x]", "a b"]
)
def test_bad_sites_are_errors(spec: str) -> None:
    with pytest.raises(SiteError):
        parse_site(spec)


def test_repeated_zone_gets_unique_names() -> None:
    names = [s.name for s in parse_sites(("z.test=127.0.0.2*3", "z.test=127.0.0.4*1"))]
    assert names == ["Z", "Z_2"]


async def run(resolver: FakeResolver, ip: str, threshold: float = 3.0):  # type: ignore[no-untyped-def]
    services = make_services(
        make_config(dnsbl=DnsblConfig(sites=SITES, threshold=threshold)), resolver=resolver
    )
    pipeline = pipeline_of(services, "mailmoat.checks.dnsbl")
    tx = new_tx(ip)
    await pipeline.run(Stage.CONNECT, tx)
    await pipeline.run(Stage.HELO, tx)
    rcpt = await pipeline.run(Stage.RCPT, tx)
    return tx, rcpt


async def test_listed_client_is_refused_at_rcpt_naming_the_list() -> None:
    resolver = FakeResolver()
    resolver.add("1.2.0.192.zen.test", "A", "127.0.0.4")
    tx, decision = await run(resolver, "192.0.2.1")
    assert {s.name: s.score for s in tx.session.symbols} == {"DNSBL_ZEN": 3.0}
    assert decision.action is Action.REJECT and decision.reason == "dnsbl"
    assert decision.reply().startswith("554 5.7.1 ") and "zen.test" in decision.text


async def test_weights_add_up_to_the_threshold() -> None:
    resolver = FakeResolver()
    resolver.add("1.2.0.192.bl.test", "A", "127.0.0.2")
    resolver.add("1.2.0.192.spamcop.test", "A", "127.0.0.2")
    _tx, decision = await run(resolver, "192.0.2.1", threshold=2)
    assert decision.action is Action.REJECT
    _tx, decision = await run(resolver, "192.0.2.1", threshold=3)
    assert decision.action is Action.ACCEPT


async def test_answer_outside_filter_is_not_a_listing() -> None:
    resolver = FakeResolver()
    resolver.add("1.2.0.192.zen.test", "A", "127.0.0.1")
    resolver.add("1.2.0.192.spamcop.test", "A", "127.0.0.3")
    tx, decision = await run(resolver, "192.0.2.1")
    assert tx.session.symbols == [] and decision.action is Action.ACCEPT


async def test_dnswl_offsets_and_marks_session() -> None:
    resolver = FakeResolver()
    resolver.add("1.2.0.192.list.dnswl.test", "A", "127.0.10.2")
    tx, decision = await run(resolver, "192.0.2.1")
    assert {s.name: s.score for s in tx.session.symbols} == {"DNSBL_LIST_DNSWL": -2.0}
    assert tx.session.dnswl is True and decision.action is Action.ACCEPT
    resolver.add("1.2.0.192.zen.test", "A", "127.0.0.2")
    resolver.add("1.2.0.192.bl.test", "A", "127.0.0.2")
    resolver.add("1.2.0.192.spamcop.test", "A", "127.0.0.2")
    tx, decision = await run(resolver, "192.0.2.1")  # 3 + 1 + 1 - 2 = 3
    assert decision.action is Action.REJECT and not tx.session.dnswl


async def test_spamhaus_error_codes_never_count(caplog: pytest.LogCaptureFixture) -> None:
    resolver = FakeResolver()
    resolver.add("1.2.0.192.zen.test", "A", "127.255.255.254")
    resolver.add("1.2.0.192.bl.test", "A", "127.255.255.252")
    with caplog.at_level(logging.WARNING, "mailmoat.checks.dnsbl"):
        tx, decision = await run(resolver, "192.0.2.1", threshold=1)
    assert decision.action is Action.ACCEPT
    assert [s.name for s in tx.session.symbols] == ["DNSBL_ERROR_CODE", "DNSBL_ERROR_CODE"]
    assert all(s.score == 0 for s in tx.session.symbols)
    assert "127.255.255.254" in caplog.text and "not a listing" in caplog.text


async def test_failed_lookups_are_no_evidence() -> None:
    resolver = FakeResolver()
    resolver.fail("1.2.0.192.zen.test", "A", "timeout")
    resolver.fail("1.2.0.192.bl.test", "A", "servfail")
    tx, decision = await run(resolver, "192.0.2.1", threshold=1)
    assert decision.action is Action.ACCEPT
    assert {s.detail for s in tx.session.symbols} == {"zen.test: timeout", "bl.test: servfail"}


async def test_ipv6_nibble_query() -> None:
    resolver = FakeResolver()
    name = "1.0.0.0." + "0." * 20 + "8.b.d.0.1.0.0.2.zen.test"
    resolver.add(name, "A", "127.0.0.3")
    _tx, decision = await run(resolver, "2001:db8::1")
    assert decision.action is Action.REJECT
    assert (name, "A") in resolver.queries


async def test_all_sites_queried_at_connect_once_per_session() -> None:
    resolver = FakeResolver(delay=0.05)
    services = make_services(make_config(dnsbl=DnsblConfig(sites=SITES)), resolver=resolver)
    pipeline = pipeline_of(services, "mailmoat.checks.dnsbl")
    tx = new_tx("192.0.2.9")
    started = time.monotonic()
    await pipeline.run(Stage.CONNECT, tx)
    assert time.monotonic() - started < 0.04, "lookups run in the background"
    await asyncio.sleep(0.01)
    assert len(resolver.queries) == len(SITES), "all sites asked at once"
    await pipeline.run(Stage.HELO, tx)
    # One after another would take 4 x 0.05 s.
    assert time.monotonic() - started < 0.15, "concurrently, not one after another"
    await pipeline.run(Stage.HELO, tx)  # e.g. again after STARTTLS
    assert len(resolver.queries) == len(SITES)


def test_disabled_without_sites() -> None:
    services = make_services(make_config(dnsbl=DnsblConfig(sites=())), resolver=FakeResolver())
    assert pipeline_of(services, "mailmoat.checks.dnsbl").checks == []


def test_embedded_defaults_build_the_lists() -> None:
    checks = pipeline_of(make_services(resolver=FakeResolver()), "mailmoat.checks.dnsbl").checks
    assert checks, "the embedded defaults ship DNS lists"
