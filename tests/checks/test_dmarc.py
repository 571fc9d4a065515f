"""DMARC: policy discovery, alignment, p/sp/pct, configured actions; A-R header."""

from __future__ import annotations

import asyncio
import random

import pytest

from authfakes import FakeResolver, make_tx, names
from mailmoat.checks.auth_results import (
    AuthResult,
    AuthResultsCheck,
    claimed_id,
    header_fields,
)
from mailmoat.checks.dmarc import DmarcCheck, aligned, from_domain, org_domain
from mailmoat.core.symbols import Action, Evidence

POLICIES: dict[tuple[str, str], object] = {
    ("_dmarc.example.org", "TXT"): ["v=DMARC1; p=reject; rua=mailto:d@example.org"],
    ("_dmarc.strict.test", "TXT"): ["v=DMARC1; p=quarantine; aspf=s; adkim=s"],
    ("_dmarc.parent.co.uk", "TXT"): ["v=DMARC1; p=reject; sp=none"],
    ("_dmarc.half.test", "TXT"): ["v=DMARC1; p=reject; pct=50"],
    ("_dmarc.monitor.test", "TXT"): ["v=DMARC1; p=none"],
    ("_dmarc.dup.test", "TXT"): ["v=DMARC1; p=none", "v=DMARC1; p=reject"],
    ("_dmarc.flaky.test", "TXT"): "servfail",
    ("_dmarc.other.test", "TXT"): ["some unrelated TXT record"],
}


def spf(result: str, sender: str) -> AuthResult:
    return AuthResult("spf", result, "", (("smtp.mailfrom", sender),))


def dkim(result: str, domain: str) -> AuthResult:
    return AuthResult("dkim", result, "", (("header.d", domain),))


def run_dmarc(
    from_header: str,
    spf_results: list[AuthResult],
    dkim_results: list[AuthResult],
    actions: tuple[str, str] = ("reject", "quarantine"),
    seed: int = 1,
) -> tuple[dict[str, float], Evidence, list[AuthResult]]:
    data = f"From: {from_header}\r\nSubject: x\r\n\r\nbody\r\n".encode()
    tx = make_tx(data)
    tx.spf_results = spf_results
    tx.dkim_results = dkim_results
    check = DmarcCheck(FakeResolver(POLICIES), 0.5, *actions, rng=random.Random(seed))
    evidence = Evidence()
    asyncio.run(check.run(tx, evidence))
    return names(evidence), evidence, tx.dmarc_results


@pytest.mark.parametrize(
    ("label", "sender", "spf_r", "dkim_r", "symbol", "forced"),
    [
        ("spf aligned", "a@example.org", spf("pass", "b@example.org"), [], "DMARC_PASS", None),
        (
            "spf relaxed sub",
            "a@example.org",
            spf("pass", "b@bounce.example.org"),
            [],
            "DMARC_PASS",
            None,
        ),
        (
            "dkim aligned",
            "a@example.org",
            spf("fail", "x@evil.test"),
            [dkim("pass", "mail.example.org")],
            "DMARC_PASS",
            None,
        ),
        (
            "spf misaligned",
            "a@example.org",
            spf("pass", "x@evil.test"),
            [],
            "DMARC_POLICY_REJECT",
            Action.REJECT,
        ),
        (
            "dkim misaligned",
            "a@example.org",
            spf("none", "x@evil.test"),
            [dkim("pass", "evil.test")],
            "DMARC_POLICY_REJECT",
            Action.REJECT,
        ),
        (
            "dkim failed",
            "a@example.org",
            spf("none", "x@evil.test"),
            [dkim("fail", "example.org")],
            "DMARC_POLICY_REJECT",
            Action.REJECT,
        ),
        (
            "dkim l= partial",
            "a@example.org",
            spf("none", "x@evil.test"),
            [dkim("policy", "example.org")],
            "DMARC_POLICY_REJECT",
            Action.REJECT,
        ),
        (
            "strict spf sub",
            "a@strict.test",
            spf("pass", "b@sub.strict.test"),
            [],
            "DMARC_POLICY_QUARANTINE",
            Action.QUARANTINE,
        ),
        (
            "strict dkim exact",
            "a@strict.test",
            spf("fail", "b@x.test"),
            [dkim("pass", "strict.test")],
            "DMARC_PASS",
            None,
        ),
        (
            "org fallback sp",
            "a@sub.parent.co.uk",
            spf("fail", "b@x.test"),
            [],
            "DMARC_POLICY_NONE",
            None,
        ),
        (
            "org fallback p",
            "a@parent.co.uk",
            spf("fail", "b@x.test"),
            [],
            "DMARC_POLICY_REJECT",
            Action.REJECT,
        ),
        ("monitor", "a@monitor.test", spf("fail", "b@x.test"), [], "DMARC_POLICY_NONE", None),
        ("no record", "a@nothing.test", spf("fail", "b@x.test"), [], "DMARC_NA", None),
        ("unrelated txt", "a@other.test", spf("fail", "b@x.test"), [], "DMARC_NA", None),
        ("two records", "a@dup.test", spf("fail", "b@x.test"), [], "DMARC_PERMERROR", None),
        ("dns failure", "a@flaky.test", spf("fail", "b@x.test"), [], "DMARC_TEMPERROR", None),
        (
            "spf temperror only",
            "a@example.org",
            spf("temperror", "b@example.org"),
            [],
            "DMARC_TEMPERROR",
            None,
        ),
    ],
)
def test_policy(
    label: str,
    sender: str,
    spf_r: AuthResult,
    dkim_r: list[AuthResult],
    symbol: str,
    forced: Action | None,
) -> None:
    symbols, evidence, notes = run_dmarc(sender, [spf_r], dkim_r)
    assert symbol in symbols, (label, symbols)
    assert [f.action for f in evidence.forced] == ([forced] if forced else []), label
    assert notes and notes[0].prop("header.from") == sender.split("@")[1], label


def test_reject_reply_and_configured_actions() -> None:
    _, evidence, _ = run_dmarc("a@example.org", [spf("fail", "b@x.test")], [])
    verdict = evidence.forced[0]
    assert (verdict.code, verdict.status, verdict.reason) == (550, "5.7.1", "dmarc")
    for action, expected in (("score", []), ("quarantine", [Action.QUARANTINE])):
        symbols, evidence, _ = run_dmarc(
            "a@example.org", [spf("fail", "b@x.test")], [], (action, "score")
        )
        assert [f.action for f in evidence.forced] == expected
        assert symbols["DMARC_POLICY_REJECT"] == 4.0


def test_pct_samples_failures() -> None:
    outcomes = [
        next(iter(run_dmarc("a@half.test", [spf("fail", "b@x.test")], [], seed=s)[0]))
        for s in range(40)
    ]
    assert {"DMARC_POLICY_REJECT", "DMARC_POLICY_QUARANTINE"} == set(outcomes)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Alice <a@Example.ORG>", "example.org"),
        ("a@example.org, b@evil.test", None),
        ("undisclosed-recipients:;", None),
    ],
)
def test_from_domain(header: str, expected: str | None) -> None:
    assert from_domain(header_fields(f"From: {header}\r\n\r\n".encode())) == expected
    assert from_domain(header_fields(b"From: a@x.test\r\nFrom: b@x.test\r\n\r\n")) is None
    assert from_domain(header_fields(b"Subject: no from\r\n\r\n")) == ""


def test_alignment_helpers() -> None:
    assert org_domain("a.b.example.co.uk") == "example.co.uk"
    assert aligned("mail.example.org", "example.org", "r")
    assert not aligned("mail.example.org", "example.org", "s")
    assert not aligned("example.org.evil.test", "example.org", "r")


def test_authentication_results_header_and_forgery_removal() -> None:
    data = (
        b"Authentication-Results: MX.Example.NET; dkim=pass header.d=bank.test\r\n"
        b"Authentication-Results: other.example; spf=pass\r\n"
        b"From: a@example.org\r\n\r\nbody\r\n"
    )
    tx = make_tx(data)
    tx.spf_results = [spf("pass", "a@example.org")]
    tx.dkim_results = [dkim("fail", "example.org")]
    tx.dmarc_results = [AuthResult("dmarc", "pass", "", (("header.from", "example.org"),))]
    evidence = Evidence()
    asyncio.run(AuthResultsCheck("mx.example.net").run(tx, evidence))
    assert tx.removed_headers == [
        ("Authentication-Results", "MX.Example.NET; dkim=pass header.d=bank.test")
    ]
    assert names(evidence) == {"AUTH_RESULTS_FORGED": 0.5}
    [(name, value)] = tx.added_headers
    assert name == "Authentication-Results"
    assert value == (
        "mx.example.net; spf=pass smtp.mailfrom=a@example.org; "
        "dkim=fail header.d=example.org; dmarc=pass header.from=example.org"
    )
    assert claimed_id(" (comment) mx.example.net ; none") == "mx.example.net"
    empty = make_tx(b"From: a@b.test\r\n\r\nx\r\n")
    asyncio.run(AuthResultsCheck("mx.example.net").run(empty, Evidence()))
    assert empty.added_headers == [("Authentication-Results", "mx.example.net; none")]
