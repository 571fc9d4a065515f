"""The embedded DNS list defaults end to end: rbldnsd on loopback serves test
data under the real zone names (zen.spamhaus.org, list.dnswl.org,
dbl.spamhaus.org), the gateway runs with the shipped [dnsbl], [urlbl],
[actions] and [greylist] settings, and the weights show in the replies."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mailmoat.config import Config
from screening_support import ScreeningGateway, envelope
from servers import Rbldnsd

pytestmark = pytest.mark.integration

XBL, PBL, DNSWL_HI, REFUSING = "127.0.0.30", "127.0.0.31", "127.0.0.32", "127.0.0.33"
ZONES = {
    "zen.spamhaus.org": (
        "ip4set",
        f"{XBL} :127.0.0.4:xbl\n{PBL} :127.0.0.10:pbl\n"
        f"{REFUSING} :127.255.255.254:public resolver\n",
    ),
    "list.dnswl.org": ("ip4set", f"{DNSWL_HI} :127.0.5.3:trust high\n"),
    "dbl.spamhaus.org": (
        "dnset",
        "dbl-listed.test :127.0.1.2:spam domain\nrefused-lookup.test :127.255.255.254:refused\n",
    ),
}


@pytest.fixture
def gateway(rbldnsd_factory: Callable[..., Rbldnsd], tmp_path: Path) -> Iterator[ScreeningGateway]:
    rbl = rbldnsd_factory(ZONES)
    # Only the resolver and greylisting (off in the screening harness) are
    # set here: the lists, weights and thresholds are the embedded defaults.
    with ScreeningGateway(
        tmp_path,
        {
            "dns": {"nameserver": f"127.0.0.1:{rbl.port}", "timeout": 2},
            "greylist": {"enabled": True},
        },
    ) as gw:
        assert gw.config.dnsbl == Config().dnsbl and gw.config.urlbl == Config().urlbl
        assert gw.config.actions == Config().actions and gw.config.greylist.mode == "score"
        yield gw


def listed(gateway: ScreeningGateway, ip: str, prefix: str = "DNSBL_") -> dict[str, float]:
    found = gateway.record_for(ip).symbols
    return {s.name: s.score for s in found if s.name.startswith(prefix)}


def listings(gateway: ScreeningGateway, ip: str) -> dict[str, float]:
    """The DNSBL symbols that are listings (lists the test zones do not serve fail)."""
    return {k: v for k, v in listed(gateway, ip).items() if k != "DNSBL_UNAVAILABLE"}


def test_xbl_listing_alone_refuses_the_client(gateway: ScreeningGateway) -> None:
    code, text = envelope(gateway, XBL)
    assert code == 554 and "zen.spamhaus.org" in text
    assert listings(gateway, XBL) == {"DNSBL_ZEN_XBL": 3.0}


def test_pbl_listing_alone_is_greylisted_not_refused(gateway: ScreeningGateway) -> None:
    code, text = envelope(gateway, PBL)
    assert code == 451 and "Greylisted" in text
    assert listings(gateway, PBL) == {"DNSBL_ZEN_PBL": 2.0}
    assert gateway.record_for(PBL).reason == "greylist"


def test_dnswl_client_gets_the_allow_weight(gateway: ScreeningGateway) -> None:
    code, _ = envelope(gateway, DNSWL_HI)
    assert code == 250
    assert listings(gateway, DNSWL_HI) == {"DNSBL_DNSWL_HI": -6.0}
    assert len(gateway.maildir_messages()) == 1


def test_refused_query_answer_counts_as_nothing(
    gateway: ScreeningGateway, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, "mailmoat.checks"):
        code, _ = envelope(gateway, REFUSING)
    assert code == 250  # neither refused nor greylisted
    assert listings(gateway, REFUSING) == {"DNSBL_ERROR_CODE": 0.0}
    assert "127.255.255.254" in caplog.text and "zen.spamhaus.org" in caplog.text


def test_dbl_listed_domain_is_scored_and_refused_lookup_is_not(
    gateway: ScreeningGateway, caplog: pytest.LogCaptureFixture
) -> None:
    message = (
        b"From: sender@example.net\r\nTo: user@example.org\r\nSubject: offer\r\n"
        b"Date: Sat, 28 Nov 2026 03:00:00 +0000\r\nMessage-ID: <2@example.net>\r\n\r\n"
        b"See http://www.dbl-listed.test/offer and http://refused-lookup.test/x\r\n"
    )
    with (
        caplog.at_level(logging.WARNING, "mailmoat.checks.urlbl"),
        gateway.client(DNSWL_HI) as smtp,
    ):
        smtp.ehlo("client.example.net")
        assert smtp.mail("sender@example.net")[0] == 250
        assert smtp.rcpt("user@example.org")[0] == 250
        code, _ = smtp.data(message)
    assert code == 250
    assert listed(gateway, DNSWL_HI, "URIBL_") == {"URIBL_DBL_SPAM": 4.0}
    assert "127.255.255.254" in caplog.text and "refused-lookup.test" in caplog.text
