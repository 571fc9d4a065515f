"""DKIM/ARC check: signatures that pass, fail, lie about their length, or break."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import dkim
import pytest

from authfakes import FakeResolver, make_tx, names, rsa_key
from mailmoat.checks.auth_results import AuthResult
from mailmoat.checks.dkim import DkimCheck, key_name, tags
from mailmoat.core.symbols import Evidence

MESSAGE = (
    b"From: Alice <alice@example.org>\r\nTo: bob@example.net\r\nSubject: hello\r\n"
    b"Date: Mon, 2 Jan 2023 10:00:00 +0000\r\nMessage-ID: <1@example.org>\r\n\r\n"
    b"Hello Bob,\r\nsee you tomorrow.\r\n"
)


@pytest.fixture(scope="module")
def keys() -> dict[str, tuple[bytes, str]]:
    return {"good": rsa_key(1024), "other": rsa_key(1024), "small": rsa_key(512)}


def sign(message: bytes, key: bytes, domain: bytes = b"example.org", **kw: object) -> bytes:
    header: bytes = dkim.sign(
        message, b"sel", domain, key, include_headers=[b"from", b"subject"], **kw
    )
    return header


def verify(
    data: bytes, table: Mapping[tuple[str, str], object]
) -> tuple[dict[str, float], list[AuthResult]]:
    check = DkimCheck(FakeResolver(table), 0.5, max_signatures=4, min_key_bits=1024)
    tx = make_tx(data)
    evidence = Evidence()
    asyncio.run(check.run(tx, evidence))
    return names(evidence), tx.dkim_results


def test_cases(keys: dict[str, tuple[bytes, str]]) -> None:
    good, good_txt = keys["good"]
    table = {("sel._domainkey.example.org", "TXT"): [good_txt]}
    signed = sign(MESSAGE, good)
    cases = [
        ("valid", signed + MESSAGE, table, "DKIM_VALID", "pass"),
        (
            "body changed",
            signed + MESSAGE.replace(b"tomorrow", b"today"),
            table,
            "DKIM_INVALID",
            "fail",
        ),
        (
            "subject changed",
            signed + MESSAGE.replace(b"hello", b"WIN"),
            table,
            "DKIM_INVALID",
            "fail",
        ),
        (
            "wrong key",
            signed + MESSAGE,
            {("sel._domainkey.example.org", "TXT"): [keys["other"][1]]},
            "DKIM_INVALID",
            "fail",
        ),
        ("no key", signed + MESSAGE, {}, "DKIM_PERMERROR", "permerror"),
        (
            "key servfail",
            signed + MESSAGE,
            {("sel._domainkey.example.org", "TXT"): "servfail"},
            "DKIM_TEMPFAIL",
            "temperror",
        ),
        (
            "key timeout",
            signed + MESSAGE,
            {("sel._domainkey.example.org", "TXT"): "timeout"},
            "DKIM_TEMPFAIL",
            "temperror",
        ),
        (
            "garbage key",
            signed + MESSAGE,
            {("sel._domainkey.example.org", "TXT"): ["v=DKIM1; p=!!!"]},
            "DKIM_INVALID",
            "fail",
        ),
        (
            "small key",
            sign(MESSAGE, keys["small"][0]) + MESSAGE,
            {("sel._domainkey.example.org", "TXT"): [keys["small"][1]]},
            "DKIM_PERMERROR",
            "permerror",
        ),
    ]
    for label, data, tbl, symbol, result in cases:
        assert isinstance(data, bytes) and isinstance(tbl, dict)
        symbols, notes = verify(data, tbl)
        assert symbol in symbols, label
        assert [n.result for n in notes] == [result], label


def test_body_length_tag_leaving_content_unsigned(keys: dict[str, tuple[bytes, str]]) -> None:
    good, txt = keys["good"]
    table = {("sel._domainkey.example.org", "TXT"): [txt]}
    signed = sign(MESSAGE, good, length=True)
    symbols, notes = verify(signed + MESSAGE, table)
    assert "DKIM_VALID" in symbols  # l= covering the whole body is fine
    symbols, notes = verify(signed + MESSAGE + b"Click http://evil.test/ now\r\n", table)
    assert symbols.get("DKIM_PARTIAL_BODY") == 1.5
    assert "DKIM_VALID" not in symbols
    assert notes[0].result == "policy"


def test_every_signature_is_verified(keys: dict[str, tuple[bytes, str]]) -> None:
    good, txt = keys["good"]
    other = keys["other"][0]
    data = sign(MESSAGE, other, b"list.example") + sign(MESSAGE, good) + MESSAGE
    table = {
        ("sel._domainkey.example.org", "TXT"): [txt],
        ("sel._domainkey.list.example", "TXT"): [keys["good"][1]],  # mismatching key
    }
    symbols, notes = verify(data, table)
    assert {"DKIM_VALID", "DKIM_INVALID"} <= set(symbols)
    assert sorted((n.prop("header.d"), n.result) for n in notes) == [
        ("example.org", "pass"),
        ("list.example", "fail"),
    ]


@pytest.mark.parametrize(
    "header",
    [
        b"DKIM-Signature: v=1; a=rsa-sha256; d=example.org; s=\r\n",
        b"DKIM-Signature: garbage without tags\r\n",
        b"DKIM-Signature: v=1; a=rsa-sha256; d=example.org; s=sel; b=; bh=\r\n",
        b"DKIM-Signature: v=1; a=rsa-md5; d=example.org; s=sel; h=from; b=AAAA; bh=AAAA\r\n",
        b"DKIM-Signature: v=1; a=rsa-sha256; d=" + b"x" * 300 + b".org; s=sel; b=A; bh=A\r\n",
        b"DKIM-Signature: v=1; a=rsa-sha256; d=example.org; s=sel; l=-5; h=from; b=A; bh=A\r\n",
    ],
)
def test_broken_signature_headers_are_permerrors(
    header: bytes, keys: dict[str, tuple[bytes, str]]
) -> None:
    table = {("sel._domainkey.example.org", "TXT"): [keys["good"][1]]}
    symbols, notes = verify(header + MESSAGE, table)
    assert "DKIM_PERMERROR" in symbols or "DKIM_INVALID" in symbols
    assert "DKIM_VALID" not in symbols
    assert notes and notes[0].result in ("permerror", "fail")


def test_unsigned_and_too_many() -> None:
    symbols, notes = verify(MESSAGE, {})
    assert symbols == {"DKIM_NONE": 0.0, "ARC_NONE": 0.0} and notes == []
    many = b"DKIM-Signature: v=1; d=a.test; s=s; b=A; bh=A\r\n" * 6
    symbols, notes = verify(many + MESSAGE, {})
    assert "DKIM_TOO_MANY" in symbols and len(notes) == 4


def test_broken_arc_chain_fails() -> None:
    arc = (
        b"ARC-Seal: i=1; a=rsa-sha256; cv=none; d=example.org; s=sel; b=AAAA\r\n"
        b"ARC-Message-Signature: i=1; a=rsa-sha256; d=example.org; s=sel; h=from; bh=A; b=A\r\n"
        b"ARC-Authentication-Results: i=1; mx.example.org; spf=pass\r\n"
    )
    symbols, _ = verify(arc + MESSAGE, {})
    assert symbols.get("ARC_FAIL") == 0.5


def arc_seal(message: bytes, key: bytes, srv_id: bytes) -> bytes:
    """``message`` with one more ARC set (sealed by ``srv_id`` with ``key``) on top."""
    with_ar = b"Authentication-Results: " + srv_id + b"; spf=pass smtp.mailfrom=example.org\r\n"
    data = with_ar + message
    return b"".join(dkim.arc_sign(data, b"sel", b"example.org", key, srv_id)) + data


def test_passing_arc_chain_one_and_two_hops(keys: dict[str, tuple[bytes, str]]) -> None:
    good, good_txt = keys["good"]
    table = {("sel._domainkey.example.org", "TXT"): [good_txt]}
    one_hop = arc_seal(MESSAGE, good, b"relay.example.org")
    two_hops = arc_seal(one_hop, good, b"list.example.org")
    for label, data in (("one hop", one_hop), ("two hops", two_hops)):
        check = DkimCheck(FakeResolver(table), 0.5, max_signatures=4, min_key_bits=1024)
        tx = make_tx(data)
        evidence = Evidence()
        asyncio.run(check.run(tx, evidence))
        assert names(evidence) == {"DKIM_NONE": 0.0, "ARC_PASS": -0.2}, label
        [arc] = tx.arc_results
        assert (arc.method, arc.result) == ("arc", "pass"), label


def test_arc_chain_broken_by_later_change_or_wrong_key(keys: dict[str, tuple[bytes, str]]) -> None:
    good, good_txt = keys["good"]
    sealed = arc_seal(MESSAGE, good, b"relay.example.org")
    table = {("sel._domainkey.example.org", "TXT"): [good_txt]}
    symbols, _ = verify(sealed.replace(b"tomorrow", b"never"), table)
    assert "ARC_FAIL" in symbols and "ARC_PASS" not in symbols
    symbols, _ = verify(sealed, {("sel._domainkey.example.org", "TXT"): [keys["other"][1]]})
    assert "ARC_FAIL" in symbols and "ARC_PASS" not in symbols
    symbols, _ = verify(sealed, {("sel._domainkey.example.org", "TXT"): "timeout"})
    assert "ARC_PASS" not in symbols


def test_tag_parsing() -> None:
    assert tags(" d = Example.ORG ; s=sel;b=ab\r\n cd") == {
        "d": "Example.ORG",
        "s": "sel",
        "b": "abcd",
    }
    assert key_name({"d": "Example.org.", "s": "Sel"}) == "sel._domainkey.example.org"
    assert key_name({"d": "evil.test/../x", "s": "a"}) == ""
