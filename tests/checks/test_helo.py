"""HELO sanity: one labelled case per symbol."""

from __future__ import annotations

import pytest

from fakes import make_config, make_services, pipeline_of
from mailmoat.config import RelayConfig, SmtpConfig
from mailmoat.core.symbols import Stage
from mailmoat.core.transaction import Session, Transaction

CASES = [
    ("mx.example.org", {}),
    ("mx.example.org.", {}),
    ("[192.0.2.1]", {}),
    ("[IPv6:2001:db8::1]", {"HELO_LITERAL_MISMATCH": 1.0}),
    ("[192.0.2.99]", {"HELO_LITERAL_MISMATCH": 1.0}),
    ("[203.0.113.25]", {"HELO_OURS": 4.0}),
    ("[999.1.1.1]", {"HELO_BAD_SYNTAX": 1.5}),
    ("192.0.2.1", {"HELO_BARE_IP": 2.0}),
    ("203.0.113.25", {"HELO_OURS": 4.0}),
    ("gw.mailmoat.example", {"HELO_OURS": 4.0}),
    ("GW.MAILMOAT.EXAMPLE.", {"HELO_OURS": 4.0}),
    ("mailmoat.example", {"HELO_OURS": 4.0}),
    ("localhost", {"HELO_NOT_FQDN": 1.0}),
    ("user-pc", {"HELO_NOT_FQDN": 1.0}),
    ("host.123", {"HELO_NOT_FQDN": 1.0}),
    ("a..example", {"HELO_NOT_FQDN": 1.0}),
    ("bad!name.example", {"HELO_BAD_SYNTAX": 1.5}),
]


@pytest.mark.parametrize(("helo", "expected"), CASES, ids=[c[0] for c in CASES])
async def test_helo(helo: str, expected: dict[str, float]) -> None:
    config = make_config(
        smtp=SmtpConfig(listen="203.0.113.25:25", hostname="gw.mailmoat.example"),
        relay=RelayConfig(domains=("mailmoat.example",)),
    )
    pipeline = pipeline_of(make_services(config), "mailmoat.checks.helo")
    tx = Transaction(Session(client_ip="192.0.2.1", helo=helo))
    await pipeline.run(Stage.HELO, tx)
    assert {s.name: s.score for s in tx.session.symbols} == expected


async def test_scores_are_overridable() -> None:
    config = make_config(scores={"HELO_BARE_IP": 3.5})
    pipeline = pipeline_of(make_services(config), "mailmoat.checks.helo")
    tx = Transaction(Session(client_ip="192.0.2.1", helo="192.0.2.1"))
    await pipeline.run(Stage.HELO, tx)
    assert tx.session.symbols[0].score == 3.5
