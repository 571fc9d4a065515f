"""SPF check: results per identity, DNS failures, hostile policies."""

from __future__ import annotations

import asyncio
import time

import pytest

from authfakes import FakeResolver, make_tx, names
from mailmoat.checks.spf import SpfCheck, _pyspf_run, _run, _without_policy, evaluate
from mailmoat.core.symbols import Evidence
from mailmoat.dns.base import DnsAnswer

TABLE: dict[tuple[str, str], object] = {
    ("example.org", "TXT"): ["v=spf1 ip4:192.0.2.0/24 include:_spf.example.net -all"],
    ("_spf.example.net", "TXT"): ["v=spf1 mx a:relay.example.net -all"],
    ("_spf.example.net", "MX"): ["10 mx.example.net"],
    ("mx.example.net", "A"): ["198.51.100.7"],
    ("relay.example.net", "A"): ["198.51.100.8"],
    ("soft.test", "TXT"): ["v=spf1 ~all"],
    ("neutral.test", "TXT"): ["v=spf1 ?all"],
    ("broken.test", "TXT"): ["v=spf1 ip4:300.1.2.3 -all"],
    ("two.test", "TXT"): ["v=spf1 -all", "v=spf1 +all"],
    ("tmp.test", "TXT"): "servfail",
    ("slow.test", "TXT"): "timeout",
    ("loop.test", "TXT"): ["v=spf1 include:loop2.test -all"],
    ("loop2.test", "TXT"): ["v=spf1 include:loop.test -all"],
    ("mail.example.org", "TXT"): ["v=spf1 a -all"],
    ("mail.example.org", "A"): ["192.0.2.10"],
    ("void.test", "TXT"): ["v=spf1 a:n1.void.test a:n2.void.test a:n3.void.test -all"],
}
# A chain of 30 includes: past RFC 7208's limit of 10 lookups.
for n in range(30):
    TABLE[(f"c{n}.chain.test", "TXT")] = [f"v=spf1 include:c{n + 1}.chain.test -all"]
TABLE[("chain.test", "TXT")] = ["v=spf1 include:c0.chain.test -all"]
# 15 includes side by side.
TABLE[("wide.test", "TXT")] = [
    "v=spf1 " + " ".join(f"include:w{n}.wide.test" for n in range(15)) + " -all"
]
for n in range(15):
    TABLE[(f"w{n}.wide.test", "TXT")] = ["v=spf1 -all"]


@pytest.mark.parametrize(
    ("label", "ip", "sender", "expected"),
    [
        ("direct ip4", "192.0.2.9", "a@example.org", "pass"),
        ("include + mx", "198.51.100.7", "a@example.org", "pass"),
        ("include + a", "198.51.100.8", "a@example.org", "pass"),
        ("not listed", "203.0.113.1", "a@example.org", "fail"),
        ("softfail", "203.0.113.1", "a@soft.test", "softfail"),
        ("neutral", "203.0.113.1", "a@neutral.test", "neutral"),
        ("no record", "203.0.113.1", "a@nothing.test", "none"),
        ("bad ip4", "203.0.113.1", "a@broken.test", "permerror"),
        ("two records", "203.0.113.1", "a@two.test", "permerror"),
        ("servfail", "203.0.113.1", "a@tmp.test", "temperror"),
        ("include loop", "203.0.113.1", "a@loop.test", "permerror"),
        ("giant include chain", "203.0.113.1", "a@chain.test", "permerror"),
        ("too many includes", "203.0.113.1", "a@wide.test", "permerror"),
        ("void lookups", "203.0.113.1", "a@void.test", "permerror"),
        ("ipv6 client", "2001:db8::1", "a@example.org", "fail"),
    ],
)
def test_evaluate(label: str, ip: str, sender: str, expected: str) -> None:
    resolver = FakeResolver(TABLE)
    result, _ = asyncio.run(evaluate(resolver, ip, sender, "h.example.org", 1.0))
    assert result == expected, label
    assert len(resolver.queries) <= 25, label


def test_dns_timeout_is_temperror_within_the_query_timeout() -> None:
    started = time.monotonic()
    result, _ = asyncio.run(evaluate(FakeResolver(TABLE), "203.0.113.1", "a@slow.test", "", 0.2))
    assert result == "temperror"
    assert time.monotonic() - started < 2


def test_check_symbols_and_notes_for_both_identities() -> None:
    check = SpfCheck(FakeResolver(TABLE), 1.0, check_helo=True)
    tx = make_tx(ip="192.0.2.10", helo="mail.example.org", mail_from="alice@example.org")
    evidence = Evidence()
    asyncio.run(check.run(tx, evidence))
    assert names(evidence) == {"SPF_PASS": -0.5, "SPF_HELO_PASS": 0.0}
    mailfrom, helo = tx.spf_results
    assert (mailfrom.result, mailfrom.prop("smtp.mailfrom")) == ("pass", "alice@example.org")
    assert (helo.result, helo.prop("smtp.helo")) == ("pass", "mail.example.org")


def test_null_sender_uses_the_helo_identity() -> None:
    check = SpfCheck(FakeResolver(TABLE), 1.0, check_helo=True)
    tx = make_tx(ip="203.0.113.5", helo="mail.example.org", mail_from="")
    evidence = Evidence()
    asyncio.run(check.run(tx, evidence))
    assert names(evidence) == {"SPF_FAIL": 2.5, "SPF_HELO_FAIL": 1.0}
    assert tx.spf_results[0].prop("smtp.mailfrom") == "postmaster@mail.example.org"


def test_literal_helo_and_bad_client_address_are_skipped() -> None:
    check = SpfCheck(FakeResolver(TABLE), 1.0, check_helo=True)
    tx = make_tx(ip="192.0.2.9", helo="[192.0.2.9]", mail_from="a@example.org")
    evidence = Evidence()
    asyncio.run(check.run(tx, evidence))
    assert names(evidence) == {"SPF_PASS": -0.5}
    evidence = Evidence()
    asyncio.run(check.run(make_tx(ip="not-an-ip"), evidence))
    assert evidence.symbols == []


async def test_results_are_reused_for_the_same_ip_sender_and_helo() -> None:
    resolver = FakeResolver(TABLE)
    check = SpfCheck(resolver, 1.0, check_helo=False)
    first, second = Evidence(), Evidence()
    await check.run(make_tx(ip="198.51.100.7", mail_from="a@example.org"), first)
    asked = len(resolver.queries)
    await check.run(make_tx(ip="198.51.100.7", mail_from="A@Example.org"), second)
    assert asked > 0 and len(resolver.queries) == asked
    assert [s.name for s in second.symbols] == [s.name for s in first.symbols] == ["SPF_PASS"]
    other = Evidence()
    await check.run(make_tx(ip="203.0.113.1", mail_from="a@example.org"), other)
    assert len(resolver.queries) > asked and [s.name for s in other.symbols] == ["SPF_FAIL"]


async def test_temporary_errors_are_not_reused() -> None:
    resolver = FakeResolver(TABLE)
    check = SpfCheck(resolver, 1.0, check_helo=False)
    for _ in range(2):
        evidence = Evidence()
        await check.run(make_tx(ip="203.0.113.1", mail_from="a@tmp.test"), evidence)
        assert [s.name for s in evidence.symbols] == ["SPF_TEMPERROR"]
    assert resolver.queries.count(("tmp.test", "TXT")) == 2


_SHORTCUT_ANSWERS: dict[tuple[str, str], DnsAnswer] = {
    ("nothing.test", "TXT"): DnsAnswer("nxdomain"),
    ("empty.test", "TXT"): DnsAnswer("ok"),
    ("other.test", "TXT"): DnsAnswer(
        "ok", ("google-site-verification=abc", "v=spf10 -all", "v=spf1x", " v=spf1 -all", "é")
    ),
    ("policy.test", "TXT"): DnsAnswer("ok", ("v=spf1 -all",)),
    ("upper.test", "TXT"): DnsAnswer("ok", ("x", "V=SPF1 ?all")),
    ("bare.test", "TXT"): DnsAnswer("ok", ("v=spf1",)),
    ("two.test", "TXT"): DnsAnswer("ok", ("v=spf1 -all", "v=spf1 +all")),
    ("failed.test", "TXT"): DnsAnswer("servfail"),
    ("timeout.test", "TXT"): DnsAnswer("timeout"),
    ("üni.test", "TXT"): DnsAnswer("nxdomain"),
    ("mail.nothing.test", "TXT"): DnsAnswer("nxdomain"),
}
_SHORTCUT_SENDERS = [
    "",
    "a@nothing.test",
    "a@Nothing.TEST",
    "@nothing.test",
    "a@b@nothing.test",
    "a@nothing.test.",
    "a@",
    "a@x..nothing.test",
    "a@" + "l" * 64 + ".test",
    "a@" + "l" * 63 + ".test",
    "a@empty.test",
    "a@other.test",
    "a@policy.test",
    "a@upper.test",
    "a@bare.test",
    "a@two.test",
    "a@failed.test",
    "a@timeout.test",
    "a@unasked.test",
    "a@ÜNI.test",
    "no-at-sign.test",
]
_SHORTCUT_HELOS = ["", "mail.nothing.test", "mail.unasked.test", "policy.test", "h" * 70 + ".test"]


def _outcome(value: object) -> object:
    return getattr(value, "key", value)  # a _NeedLookup by what it asks for


@pytest.mark.parametrize("ip", ["203.0.113.1", "2001:db8::1", "::ffff:192.0.2.9"])
def test_no_policy_shortcut_gives_what_pyspf_gives(ip: str) -> None:
    """The no-record case is read from the answers without pyspf: for every
    sender, HELO name and answer, the outcome (or the lookup asked for) is
    the one pyspf itself gives."""
    shortcut = 0
    for sender in _SHORTCUT_SENDERS:
        for helo in _SHORTCUT_HELOS:
            answers = dict(_SHORTCUT_ANSWERS)
            expected = _outcome(_pyspf_run(answers, ip, sender, helo, 1.0))
            assert _outcome(_run(answers, ip, sender, helo, 1.0)) == expected, (sender, helo)
            if _without_policy(answers, sender, helo):
                assert expected == ("none", ""), (sender, helo)
                shortcut += 1
    assert shortcut > 40
