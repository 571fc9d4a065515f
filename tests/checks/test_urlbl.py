"""URL blocklists: extraction, reduction, DBL codes, error codes, local lists."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from authfakes import FakeResolver, make_tx, names
from mailmoat.checks.urlbl import (
    UrlblCheck,
    UrlblConfigError,
    load_local_list,
    message_hosts,
    parse_zone,
)
from mailmoat.core.symbols import Evidence

DNS: dict[tuple[str, str], object] = {
    ("evil-bank.test.dbl.test", "A"): ["127.0.1.4"],
    ("example.com.dbl.test", "A"): ["127.0.1.2"],
    ("malware.co.uk.dbl.test", "A"): ["127.0.1.5"],
    ("redir.test.dbl.test", "A"): ["127.0.1.103"],
    ("bad.co.uk.dbl.test", "A"): ["127.0.1.255"],
    ("refused.test.dbl.test", "A"): ["127.255.255.254"],
    ("evil.test.multi.test", "A"): ["127.0.0.2"],
    ("xn--bcher-kva.test.dbl.test", "A"): ["127.0.1.2"],
    ("slow.test.dbl.test", "A"): "timeout",
}


def check(tmp_path: Path | None = None, timeout: float = 0.5) -> UrlblCheck:
    local = []
    if tmp_path is not None:
        listing = tmp_path / "local.txt"
        listing.write_text("# local\nphish.host.test\nlisted.test  # whole domain\n")
        local = [load_local_list(f"LOCAL={listing}*5")]
    zones = [parse_zone("DBL:dbl.test=127.0.1.[2..199]*4"), parse_zone("multi.test*2")]
    return UrlblCheck(FakeResolver(DNS), zones, local, timeout, 40, frozenset({"google.com"}))


def scan(body: str, ctype: str = "text/plain", **kw: object) -> dict[str, float]:
    data = f"From: a@example.org\r\nSubject: x\r\nContent-Type: {ctype}\r\n\r\n{body}\r\n"
    evidence = Evidence()
    asyncio.run(check(**kw).run(make_tx(data.encode()), evidence))  # type: ignore[arg-type]
    return names(evidence)


@pytest.mark.parametrize(
    ("label", "body", "ctype", "expected"),
    [
        ("plain url", "go to http://www.example.com/x", "text/plain", {"URIBL_DBL_SPAM": 4.0}),
        ("bare domain", "visit example.com today", "text/plain", {"URIBL_DBL_SPAM": 4.0}),
        ("obfuscated", "hxxp://spam[.]example[.]com/buy", "text/plain", {"URIBL_DBL_SPAM": 4.0}),
        ("percent host", "http://%65xample.com/", "text/plain", {"URIBL_DBL_SPAM": 4.0}),
        (
            "userinfo trick",
            "http://paypal.com@www.example.com/",
            "text/plain",
            {"URIBL_DBL_SPAM": 4.0},
        ),
        (
            "html link",
            "<a href='https://login.evil-bank.test/x'>bank</a>",
            "text/html",
            {"URIBL_DBL_PHISH": 4.0},
        ),
        (
            "redirector",
            "<a href='https://www.google.com/url?q=https%3A%2F%2Fwww.malware.co.uk%2F'>x</a>",
            "text/html",
            {"URIBL_DBL_MALWARE": 4.0},
        ),
        (
            "abused redirector code",
            "http://redir.test/?u=1",
            "text/plain",
            {"URIBL_DBL_ABUSED_REDIRECTOR": 4.0},
        ),
        ("other zone", "http://evil.test/", "text/plain", {"URIBL_MULTI": 2.0}),
        ("idn", "http://bücher.test/", "text/plain; charset=utf-8", {"URIBL_DBL_SPAM": 4.0}),
        ("dbl error code", "http://www.bad.co.uk/", "text/plain", {}),
        ("refused code", "http://refused.test/", "text/plain", {}),
        ("skipped domain", "http://google.com/", "text/plain", {}),
        ("timeout", "http://slow.test/", "text/plain", {}),
        (
            "malformed",
            "http://[::1 http://a..b/ http://-x-.test:99999/ http:// %%% ",
            "text/plain",
            {},
        ),
    ],
)
def test_cases(label: str, body: str, ctype: str, expected: dict[str, float]) -> None:
    assert scan(body, ctype) == expected, label


def test_error_code_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    scan("http://www.bad.co.uk/")
    assert "error answer 127.0.1.255" in caplog.text


def test_local_list_matches_hosts_and_parents(tmp_path: Path) -> None:
    assert scan("http://phish.host.test/a and http://www.listed.test/", tmp_path=tmp_path) == {
        "URIBL_LOCAL": 5.0
    }
    assert scan("http://host.test/", tmp_path=tmp_path) == {}


def test_many_domains_bounded_in_time() -> None:
    body = " ".join(f"http://d{n}.slow.test/" for n in range(500))
    started = time.monotonic()
    assert scan(body, timeout=0.2) == {}
    assert time.monotonic() - started < 3


def test_message_hosts_order_and_redirect_targets() -> None:
    hosts = message_hosts(
        ["http://a.test/r?to=http%253A%252F%252Fdeep.test%252F", "https://b.test:8443/"], ["c.test"]
    )
    assert hosts == ["c.test", "a.test", "deep.test", "b.test"]


@pytest.mark.parametrize("spec", ["nozone", "x.test=127.0.0", "x.test=127.0.a.1", "A B:x.test"])
def test_bad_zone_specs(spec: str) -> None:
    with pytest.raises(UrlblConfigError):
        parse_zone(spec)
