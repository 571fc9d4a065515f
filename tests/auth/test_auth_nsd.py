"""Sender authentication and URL blocklists against a real NSD on loopback.

NSD serves SPF, DKIM keys (rsa, 1024 and 2048 bits, the latter split over
several TXT strings, and ed25519), ARC sealing keys, DMARC policies and
DBL-style records; messages are signed and ARC-sealed here with keys made
for the test. The data stage runs through the
real ``Pipeline`` with the real ``CachingResolver``.
"""

from __future__ import annotations

import asyncio
import base64
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import dkim
import dns.flags
import dns.message
import nacl.signing
import pytest

from authfakes import make_tx, rsa_key
from mailmoat.checks import (
    attachments,
    auth_results,
    bulk,
    dmarc,
    rules,
    spf,
    urlbl,
)
from mailmoat.checks import (
    dkim as dkim_check,
)
from mailmoat.checks.base import Services
from mailmoat.config import AuthConfig, Config, SmtpConfig, UrlblConfig
from mailmoat.core.symbols import Action, Stage
from mailmoat.dns import CachingResolver
from mailmoat.pipeline import Pipeline
from mailmoat.smtp.outcome import prepare

pytestmark = pytest.mark.integration

CLIENT = "192.0.2.25"


def txt_strings(text: str) -> str:
    return " ".join(f'"{text[i : i + 200]}"' for i in range(0, len(text), 200))


@pytest.fixture(scope="module")
def keys() -> dict[str, tuple[bytes, str]]:
    return {"sel1": rsa_key(1024), "big": rsa_key(2048), "other": rsa_key(1024)}


@pytest.fixture
def nsd(nsd_factory: Callable[..., Any], keys: dict[str, tuple[bytes, str]]) -> Any:
    chain = "\n".join(
        f'c{n}.spf IN TXT "v=spf1 include:c{n + 1}.spf.hostile.test -all"' for n in range(40)
    )
    zones = {
        "example.test": f"""
@ IN TXT "v=spf1 ip4:192.0.2.0/24 include:_spf.example.test -all"
_spf IN TXT "v=spf1 a:relay.example.test -all"
relay IN A 198.51.100.9
sel1._domainkey IN TXT {txt_strings(keys["sel1"][1])}
big._domainkey IN TXT {txt_strings(keys["big"][1])}
_dmarc IN TXT "v=DMARC1; p=reject; rua=mailto:dmarc@example.test"
""",
        "other.test": f"""
@ IN TXT "v=spf1 ip4:192.0.2.0/24 -all"
sel1._domainkey IN TXT {txt_strings(keys["other"][1])}
_dmarc IN TXT "v=DMARC1; p=quarantine"
""",
        "norecord.test": "@ IN A 192.0.2.200\n",
        "hostile.test": f"""
@ IN TXT "v=spf1 include:c0.spf.hostile.test -all"
{chain}
loop IN TXT "v=spf1 include:loop2.hostile.test -all"
loop2 IN TXT "v=spf1 include:loop.hostile.test -all"
_dmarc IN TXT "v=DMARC1; p=reject"
""",
        "dbl.test": """
spam-domain.test IN A 127.0.1.2
phish-site.test IN A 127.0.1.4
errorcase.test IN A 127.0.1.255
""",
    }
    return nsd_factory(zones)


def services_for(port: int, timeout: float = 2.0) -> Services:
    config = Config(
        smtp=SmtpConfig(hostname="mx.mailmoat.test"),
        auth=AuthConfig(dns_timeout=timeout),
        urlbl=UrlblConfig(zones=("DBL:dbl.test=127.0.1.[2..199]*4",)),
    )
    resolver = CachingResolver(f"127.0.0.1:{port}", timeout=timeout)
    return Services(config=config, resolver=resolver)


def run_data_stage(services: Services, data: bytes, mail_from: str, ip: str = CLIENT) -> Any:
    checks = []
    for module in (spf, dkim_check, dmarc, auth_results, urlbl, rules, attachments, bulk):
        checks.extend(module.build(services))
    pipeline = Pipeline(services, checks)
    tx = make_tx(data, ip=ip, helo="mail.example.test", mail_from=mail_from)

    async def go() -> Any:
        return await pipeline.run(Stage.DATA, tx)

    decision = asyncio.run(go())
    return tx, decision, {s.name for s in tx.symbols}


def message(
    from_addr: str = "ceo@example.test", body: str = "Quarterly numbers attached.\r\n"
) -> bytes:
    return (
        f"From: CEO <{from_addr}>\r\nTo: staff@mailmoat.test\r\nSubject: numbers\r\n"
        f"Date: Mon, 2 Jan 2023 10:00:00 +0000\r\nMessage-ID: <q1@example.test>\r\n\r\n{body}"
    ).encode()


def signed(
    data: bytes, key: bytes, selector: bytes = b"sel1", domain: bytes = b"example.test"
) -> bytes:
    headers = [b"from", b"to", b"subject", b"date"]
    return bytes(dkim.sign(data, selector, domain, key, include_headers=headers)) + data


def test_pass_everything_and_authentication_results(
    nsd: Any, keys: dict[str, tuple[bytes, str]]
) -> None:
    services = services_for(nsd.port)
    data = b"Authentication-Results: mx.mailmoat.test; dmarc=pass\r\n" + signed(
        message(), keys["big"][0], b"big"
    )
    tx, decision, symbols = run_data_stage(services, data, "bounce@example.test")
    assert {"SPF_PASS", "DKIM_VALID", "DMARC_PASS", "AUTH_RESULTS_FORGED"} <= symbols
    assert decision.action is Action.ACCEPT
    delivered = prepare(tx, decision, services.config)
    head = delivered.split(b"\r\n\r\n", 1)[0].decode()
    assert head.count("Authentication-Results: mx.mailmoat.test;") == 1  # the forged one is gone
    unfolded = head.replace("\r\n\t", " ").replace("\r\n ", " ")
    assert "spf=pass smtp.mailfrom=bounce@example.test" in unfolded
    assert "dkim=pass header.d=example.test header.s=big" in unfolded
    assert "dmarc=pass" in unfolded and "header.from=example.test" in unfolded


def test_altered_body_and_unlisted_ip_rejected_by_dmarc(
    nsd: Any, keys: dict[str, tuple[bytes, str]]
) -> None:
    data = signed(message(), keys["sel1"][0]).replace(b"Quarterly", b"Urgent wire")
    _tx, decision, symbols = run_data_stage(
        services_for(nsd.port), data, "ceo@example.test", ip="203.0.113.9"
    )
    assert {"SPF_FAIL", "DKIM_INVALID", "DMARC_POLICY_REJECT"} <= symbols
    assert (decision.action, decision.code, decision.status, decision.reason) == (
        Action.REJECT,
        550,
        "5.7.1",
        "dmarc",
    )


def test_forged_from_without_signature(nsd: Any) -> None:
    _tx, decision, symbols = run_data_stage(
        services_for(nsd.port), message(), "x@norecord.test", ip="203.0.113.9"
    )
    assert {"SPF_NONE", "DKIM_NONE", "DMARC_POLICY_REJECT"} <= symbols
    assert decision.action is Action.REJECT


def test_misaligned_authentication_fails_dmarc(
    nsd: Any, keys: dict[str, tuple[bytes, str]]
) -> None:
    data = signed(message("boss@other.test"), keys["sel1"][0], domain=b"example.test")
    _tx, decision, symbols = run_data_stage(services_for(nsd.port), data, "bounce@example.test")
    assert {"SPF_PASS", "DKIM_VALID", "DMARC_POLICY_QUARANTINE"} <= symbols
    assert decision.action is Action.QUARANTINE and decision.reason == "dmarc"


def test_wrong_key_for_selector(nsd: Any, keys: dict[str, tuple[bytes, str]]) -> None:
    data = signed(message("boss@other.test"), keys["sel1"][0], domain=b"other.test")
    _tx, _decision, symbols = run_data_stage(services_for(nsd.port), data, "bounce@other.test")
    assert {"DKIM_INVALID", "SPF_PASS", "DMARC_PASS"} <= symbols


def test_no_records_anywhere(nsd: Any) -> None:
    _tx, decision, symbols = run_data_stage(
        services_for(nsd.port), message("a@norecord.test"), "a@norecord.test"
    )
    assert {"SPF_NONE", "DKIM_NONE", "DMARC_NA"} <= symbols
    assert decision.action is Action.ACCEPT


def test_hostile_spf_chain_and_loop_bounded(nsd: Any) -> None:
    started = time.monotonic()
    for sender in ("a@hostile.test", "a@loop.hostile.test"):
        _tx, _decision, symbols = run_data_stage(
            services_for(nsd.port), message("a@hostile.test"), sender
        )
        assert "SPF_PERMERROR" in symbols, sender
    assert time.monotonic() - started < 5


def test_dbl_listings_and_error_codes(nsd: Any, caplog: pytest.LogCaptureFixture) -> None:
    body = "Buy at http://www.spam-domain.test/x or log in at https://login.phish-site.test/ or http://errorcase.test/\r\n"
    _tx, _decision, symbols = run_data_stage(
        services_for(nsd.port), message(body=body), "a@norecord.test"
    )
    assert {"URIBL_DBL_SPAM", "URIBL_DBL_PHISH"} <= symbols
    assert not any("LISTED" in s for s in symbols)
    assert "error answer 127.0.1.255" in caplog.text


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A UDP port on loopback that receives queries and never answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def test_dns_timeout_gives_temperrors_not_verdicts(
    silent_port: int, keys: dict[str, tuple[bytes, str]]
) -> None:
    started = time.monotonic()
    data = signed(message(body="see http://spam-domain.test/\r\n"), keys["sel1"][0])
    tx, decision, symbols = run_data_stage(
        services_for(silent_port, timeout=0.5), data, "ceo@example.test"
    )
    assert {"SPF_TEMPERROR", "DKIM_TEMPFAIL", "DMARC_TEMPERROR"} <= symbols
    assert decision.action is Action.ACCEPT and not tx.forced
    assert time.monotonic() - started < 6


def test_ed25519_signature(nsd_factory: Callable[..., Any]) -> None:
    """PyNaCl is a dependency: an ed25519-sha256 signature verifies against NSD's key."""
    key = nacl.signing.SigningKey.generate()
    private = base64.b64encode(bytes(key))
    public = base64.b64encode(bytes(key.verify_key)).decode()
    other = base64.b64encode(bytes(nacl.signing.SigningKey.generate().verify_key)).decode()
    server = nsd_factory(
        {
            "example.test": f'ed._domainkey IN TXT "v=DKIM1; k=ed25519; p={public}"\n'
            f'wrong._domainkey IN TXT "v=DKIM1; k=ed25519; p={other}"\n'
            '_dmarc IN TXT "v=DMARC1; p=reject"\n'
        }
    )

    def ed_signed(data: bytes, selector: bytes) -> bytes:
        header = dkim.sign(
            data,
            selector,
            b"example.test",
            private,
            signature_algorithm=b"ed25519-sha256",
            include_headers=[b"from", b"subject"],
        )
        return bytes(header) + data

    tx, decision, symbols = run_data_stage(
        services_for(server.port), ed_signed(message(), b"ed"), "x@example.test"
    )
    assert {"DKIM_VALID", "DMARC_PASS"} <= symbols and "DKIM_UNSUPPORTED" not in symbols
    assert decision.action is Action.ACCEPT
    [result] = tx.dkim_results
    assert (result.result, result.prop("header.s")) == ("pass", "ed")
    # The same signature over an altered body, or checked against another key, fails.
    altered = ed_signed(message(), b"ed").replace(b"Quarterly", b"Annual")
    _tx, decision, symbols = run_data_stage(services_for(server.port), altered, "x@example.test")
    assert {"DKIM_INVALID", "DMARC_POLICY_REJECT"} <= symbols
    assert decision.action is Action.REJECT
    _tx, _decision, symbols = run_data_stage(
        services_for(server.port), ed_signed(message(), b"wrong"), "x@example.test"
    )
    assert "DKIM_INVALID" in symbols and "DKIM_VALID" not in symbols


def arc_sealed(data: bytes, key: bytes, srv_id: bytes, verdict: bytes) -> bytes:
    """``data`` after one forwarding hop: its Authentication-Results and ARC set on top."""
    hop = b"Authentication-Results: " + srv_id + b"; " + verdict + b"\r\n" + data
    seal = dkim.arc_sign(hop, b"arc", b"forwarder.test", key, srv_id)
    return b"".join(seal) + hop


def test_passing_arc_chain_through_a_mailing_list(
    nsd_factory: Callable[..., Any], keys: dict[str, tuple[bytes, str]]
) -> None:
    """A list alters a DKIM-signed message, then seals it: DKIM fails, ARC passes."""
    arc_key, arc_txt = keys["other"]
    server = nsd_factory(
        {
            "example.test": f"sel1._domainkey IN TXT {txt_strings(keys['sel1'][1])}\n",
            "forwarder.test": f"arc._domainkey IN TXT {txt_strings(arc_txt)}\n",
        }
    )
    original = signed(message(), keys["sel1"][0])
    listed = original.replace(b"Subject: numbers", b"Subject: [staff] numbers")
    one_hop = arc_sealed(
        listed, arc_key, b"lists.forwarder.test", b"dkim=pass header.d=example.test"
    )
    two_hops = arc_sealed(one_hop, arc_key, b"mx2.forwarder.test", b"arc=pass")
    for label, data in (("one hop", one_hop), ("two hops", two_hops)):
        tx, _decision, symbols = run_data_stage(
            services_for(server.port), data, "list-bounces@forwarder.test"
        )
        assert {"ARC_PASS", "DKIM_INVALID"} <= symbols and "ARC_FAIL" not in symbols, label
        [arc] = tx.arc_results
        assert arc.result == "pass", label
    # The same chain, altered after the last seal, no longer passes.
    tampered = two_hops.replace(b"Quarterly", b"Urgent wire")
    _tx, _decision, symbols = run_data_stage(
        services_for(server.port), tampered, "list-bounces@forwarder.test"
    )
    assert "ARC_FAIL" in symbols and "ARC_PASS" not in symbols


def test_nsd_launcher_does_not_rate_limit(nsd: Any) -> None:
    """tests/servers.Nsd turns NSD's response rate limiting off: a burst of 1000 queries
    from one client is answered in full, none dropped or truncated (RRL would slip)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(2.0)
    sock.connect(("127.0.0.1", nsd.port))
    answered = truncated = 0
    try:
        for burst in range(10):
            for n in range(100):
                query = dns.message.make_query(f"x{burst}-{n}.norecord.test", "A")
                query.id = burst * 100 + n
                sock.send(query.to_wire())
            for _ in range(100):
                try:
                    reply = dns.message.from_wire(sock.recv(4096))
                except TimeoutError:
                    break
                answered += 1
                truncated += bool(reply.flags & dns.flags.TC)
    finally:
        sock.close()
    assert (answered, truncated) == (1000, 0)
