"""DNSBL/DNSWL end to end: a real rbldnsd on loopback, the gateway, smtplib."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mailmoat.checks.dnsbl import parse_sites, query_sites
from mailmoat.dns import CachingResolver
from screening_support import ScreeningGateway, envelope
from servers import Rbldnsd

pytestmark = pytest.mark.integration

ZONES = {
    "zen.test": [
        ("ip4set", ":127.0.0.2:Listed in zen\n127.0.0.20\n127.0.0.22 :127.0.0.4:xbl\n"),
        ("ip6trie", ":127.0.0.3:Listed v6\n::1/128\n2001:db8:bad::/48\n"),
    ],
    "err.test": ("ip4set", ":127.255.255.254:Query refused\n127.0.0.24\n"),
    "wl.test": ("ip4set", ":127.0.10.2:Allowlisted\n127.0.0.23\n"),
    "weak.test": ("ip4set", ":127.0.0.2:weak\n127.0.0.23\n127.0.0.25\n"),
}
SITES = [
    "zen.test=127.0.0.[2..11]*3",
    "err.test*3",
    "wl.test=127.0.[0..255].[1..3]*-2",
    "weak.test*1",
]


@pytest.fixture
def rbl(rbldnsd_factory: Callable[..., Rbldnsd]) -> Rbldnsd:
    return rbldnsd_factory(ZONES)


@pytest.fixture
def gateway(rbl: Rbldnsd, tmp_path: Path) -> Iterator[ScreeningGateway]:
    with ScreeningGateway(
        tmp_path,
        {
            "dns": {"nameserver": f"127.0.0.1:{rbl.port}", "timeout": 2},
            "dnsbl": {"sites": SITES, "threshold": 3},
            # Every unknown client is greylisted, so an accepted message shows
            # the DNSWL exemption.
            "greylist": {"enabled": True, "mode": "all"},
        },
    ) as gw:
        yield gw


def symbols(gateway: ScreeningGateway, ip: str) -> dict[str, float]:
    """The screening symbols of the client's last record (content checks left out)."""
    found = gateway.record_for(ip).symbols
    return {s.name: s.score for s in found if s.name.startswith(("DNSBL_", "RDNS_"))}


def test_listed_client_refused_at_rcpt(gateway: ScreeningGateway) -> None:
    code, text = envelope(gateway, "127.0.0.20")
    assert code == 554 and text.startswith("5.7.1 ") and "zen.test" in text
    record = gateway.record_for("127.0.0.20")
    assert (record.reason, record.stage, record.rcpts) == ("dnsbl", "rcpt", ("user@example.org",))
    assert symbols(gateway, "127.0.0.20") == {"DNSBL_ZEN": 3.0}
    names = {s.name for s in record.symbols}
    assert "GREYLIST_DEFERRED" not in names, "a refused client leaves no greylist triplet"


def test_filter_applies_per_answer(gateway: ScreeningGateway) -> None:
    assert envelope(gateway, "127.0.0.22")[0] == 554  # 127.0.0.4 is inside [2..11]


def test_unlisted_client_goes_on_to_the_next_test(gateway: ScreeningGateway) -> None:
    code, text = envelope(gateway, "127.0.0.21")
    assert code == 451 and "Greylisted" in text
    assert "DNSBL" not in " ".join(symbols(gateway, "127.0.0.21"))


def test_dnswl_client_skips_greylisting(gateway: ScreeningGateway) -> None:
    code, _ = envelope(gateway, "127.0.0.23")  # wl -2, weak +1: total -1
    assert code == 250
    assert symbols(gateway, "127.0.0.23") == {"DNSBL_WL": -2.0, "DNSBL_WEAK": 1.0}
    assert len(gateway.maildir_messages()) == 1


def test_weight_below_threshold_is_scored_not_refused(gateway: ScreeningGateway) -> None:
    code, text = envelope(gateway, "127.0.0.25")
    assert code == 451 and "Greylisted" in text
    assert symbols(gateway, "127.0.0.25")["DNSBL_WEAK"] == 1.0


def test_error_code_never_counts(
    gateway: ScreeningGateway, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, "mailmoat.checks.dnsbl"):
        code, text = envelope(gateway, "127.0.0.24")
    assert code == 451 and "Greylisted" in text  # not 554: "err.test*3" did not count
    assert symbols(gateway, "127.0.0.24") == {"DNSBL_ERROR_CODE": 0.0}
    assert "127.255.255.254" in caplog.text


async def test_ipv6_nibble_queries(rbl: Rbldnsd) -> None:
    resolver = CachingResolver(f"127.0.0.1:{rbl.port}", timeout=2)
    sites = parse_sites(("zen.test=127.0.0.[2..11]*3",))
    listed = await query_sites(resolver, sites, "2001:db8:bad::77")
    clean = await query_sites(resolver, sites, "2001:db8:900d::77")
    assert listed[0].answer.records == ("127.0.0.3",)
    assert clean[0].answer.status == "nxdomain"


def test_ipv6_client_refused(rbl: Rbldnsd, tmp_path: Path) -> None:
    with ScreeningGateway(
        tmp_path,
        {
            "smtp": {"listen": "[::1]:0"},
            "dns": {"nameserver": f"127.0.0.1:{rbl.port}"},
            "dnsbl": {"sites": SITES},
        },
    ) as gw:
        code, text = envelope(gw, "::1")
        assert code == 554 and "zen.test" in text
        assert symbols(gw, "::1") == {"DNSBL_ZEN": 3.0}


def test_dns_timeout_is_no_evidence(tmp_path: Path) -> None:
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    try:
        with ScreeningGateway(
            tmp_path,
            {
                "dns": {"nameserver": f"127.0.0.1:{silent.getsockname()[1]}", "timeout": 0.5},
                "dnsbl": {"sites": SITES},
            },
        ) as gw:
            started = time.monotonic()
            code, _ = envelope(gw, "127.0.0.20")
            assert code == 250 and time.monotonic() - started < 3
            found = [s for s in gw.record_for("127.0.0.20").symbols if "DNSBL" in s.name]
            assert {s.name for s in found} == {"DNSBL_UNAVAILABLE"}
            assert all(s.score == 0 and s.detail.endswith(": timeout") for s in found)
    finally:
        silent.close()
