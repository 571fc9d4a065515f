"""The autolearn guard, table-driven over symbol sets."""

from __future__ import annotations

import pytest

from mailmoat.classify.autolearn import judge
from mailmoat.config import ClassifierConfig
from mailmoat.core.symbols import Symbol

SETTINGS = ClassifierConfig()


def symbols(**scores: float) -> list[Symbol]:
    return [Symbol(name, score) for name, score in scores.items()]


@pytest.mark.parametrize(
    ("label", "found", "expected"),
    [
        ("rules and sender evidence", symbols(DNSBL_ZEN_PBL=2, SPF_FAIL=2.5, RULE_A=8), "spam"),
        ("exactly at the thresholds", symbols(HELO_BARE_IP=3, RULE_A=9), "spam"),
        ("classifier does not count", symbols(BAYES_SPAM=6, SPF_FAIL=3, RULE_A=5), None),
        ("classifier cannot veto spam", symbols(BAYES_HAM=-3, SPF_FAIL=3, RULE_A=9.5), "spam"),
        ("content alone", symbols(RULE_A=10, URIBL_DBL_SPAM=4), None),
        ("sender alone", symbols(DNSBL_ZEN_PBL=2, RDNS_NONE=1.5, SPF_FAIL=9), None),
        ("below the spam threshold", symbols(SPF_FAIL=3, RULE_A=8.9), None),
        ("authenticated and clean", symbols(SPF_PASS=-0.5, BAYES_HAM=-1), "ham"),
        ("dmarc pass", symbols(DMARC_PASS=-0.5, DKIM_VALID=-0.5), "ham"),
        ("clean but not authenticated", symbols(SPF_NONE=0.0, HDR_X=-1), None),
        ("authenticated, classifier leans spam", symbols(SPF_PASS=-0.5, BAYES_SPAM=1), None),
        ("authenticated, score above 0.1", symbols(SPF_PASS=-0.5, RULE_A=0.7), None),
        ("admin allow list", symbols(LIST_ALLOW_FROM=0, SPF_PASS=-0.5), None),
        ("admin deny list", symbols(LIST_DENY_NET=0, SPF_FAIL=3, RULE_A=10), None),
    ],
)
def test_judge(label: str, found: list[Symbol], expected: str | None) -> None:
    assert judge(found, SETTINGS).label == expected, label


def test_labelled_messages_are_never_learned() -> None:
    assert judge(symbols(SPF_PASS=-0.5), SETTINGS, labelled=True).label is None


def test_thresholds_come_from_config() -> None:
    strict = ClassifierConfig(autolearn_spam_threshold=20.0, autolearn_ham_threshold=-1.0)
    assert judge(symbols(SPF_FAIL=3, RULE_A=10), strict).label is None
    assert judge(symbols(SPF_PASS=-0.5), strict).label is None
