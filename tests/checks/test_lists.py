"""Static allow/deny lists: entries, files reloaded on change, precedence."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fakes import FakeClock, make_config, make_services, new_tx, pipeline_of
from mailmoat.checks.lists import Entries, ListSet
from mailmoat.config import DnsblConfig, ListsConfig
from mailmoat.core.symbols import Action, Stage

ENTRIES = [
    "192.0.2.0/24",
    "2001:db8::/32",
    "198.51.100.7",
    "helo:MX.Partner.example.",
    "from:boss@example.com",
    "from:friends.example",
    "from:.trusted.example",
]


@pytest.mark.parametrize(
    ("method", "value", "found"),
    [
        ("network_of", "192.0.2.200", "192.0.2.0/24"),
        ("network_of", "192.0.3.1", ""),
        ("network_of", "2001:db8:1::5", "2001:db8::/32"),
        ("network_of", "198.51.100.7", "198.51.100.7"),
        ("network_of", "198.51.100.8", ""),
        ("helo_of", "mx.partner.example", "mx.partner.example"),
        ("helo_of", "mx2.partner.example", ""),
        ("sender_of", "Boss@Example.com", "boss@example.com"),
        ("sender_of", "other@example.com", ""),
        ("sender_of", "a@friends.example", "friends.example"),
        ("sender_of", "a@sub.friends.example", ""),
        ("sender_of", "a@trusted.example", ".trusted.example"),
        ("sender_of", "a@deep.sub.trusted.example", ".trusted.example"),
        ("sender_of", "", ""),
    ],
)
def test_entries(method: str, value: str, found: str) -> None:
    entries = Entries()
    for entry in ENTRIES:
        entries.add(entry)
    assert getattr(entries, method)(value) == found


def test_malformed_inline_entry_is_an_error() -> None:
    with pytest.raises(ValueError):
        Entries().add("not-a-network")


def test_file_reloaded_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "allow.txt"
    path.write_text("# partners\n192.0.2.0/24   # office\n\nbogus entry\n")
    clock = FakeClock(0)
    lists = ListSet([], [str(path)], interval=5, clock=clock)
    assert lists.current().network_of("192.0.2.1")
    path.write_text("203.0.113.0/24\n")
    os.utime(path, (1, 1))
    clock.advance(1)
    assert lists.current().network_of("192.0.2.1"), "re-read only every 5 s"
    clock.advance(5)
    assert not lists.current().network_of("192.0.2.1")
    assert lists.current().network_of("203.0.113.9")
    path.unlink()
    clock.advance(5)
    assert lists.current().network_of("203.0.113.9"), "unreadable file keeps last entries"


async def decide_for(lists: ListsConfig, ip: str, helo: str, sender: str, **extra: object):  # type: ignore[no-untyped-def]
    services = make_services(make_config(lists=lists, **extra))
    pipeline = pipeline_of(services, "mailmoat.checks.lists")
    tx = new_tx(ip, helo, sender)
    for stage in (Stage.CONNECT, Stage.HELO, Stage.MAIL):
        await pipeline.run(stage, tx)
    return tx, await pipeline.run(Stage.RCPT, tx)


@pytest.mark.parametrize(
    ("ip", "helo", "sender", "action", "symbol"),
    [
        ("192.0.2.9", "x.example", "a@b.example", Action.ACCEPT, "LIST_ALLOW_NET"),
        ("203.0.113.9", "x.example", "a@b.example", Action.REJECT, "LIST_DENY_NET"),
        ("203.0.113.1", "x.example", "a@b.example", Action.ACCEPT, "LIST_ALLOW_NET"),
        ("198.51.100.1", "bad.example", "a@b.example", Action.REJECT, "LIST_DENY_HELO"),
        ("198.51.100.1", "x.example", "a@spam.example", Action.REJECT, "LIST_DENY_FROM"),
        ("198.51.100.1", "x.example", "ok@partner.example", Action.ACCEPT, "LIST_ALLOW_FROM"),
        ("198.51.100.1", "x.example", "a@b.example", Action.ACCEPT, ""),
    ],
    ids=[
        "allow-net",
        "deny-net",
        "allow-hole-in-deny",
        "deny-helo",
        "deny-from",
        "allow-from",
        "unlisted",
    ],
)
async def test_verdicts(ip: str, helo: str, sender: str, action: Action, symbol: str) -> None:
    lists = ListsConfig(
        allow=("192.0.2.0/24", "203.0.113.1", "from:partner.example"),
        deny=("203.0.113.0/24", "helo:bad.example", "from:spam.example"),
    )
    tx, decision = await decide_for(lists, ip, helo, sender)
    assert decision.action is action
    assert [s.name for s in tx.all_symbols] == ([symbol] if symbol else [])
    if action is Action.REJECT:
        assert decision.reply() == "554 5.7.1 Access denied" and decision.reason == "denylist"


async def test_allowlist_beats_dnsbl() -> None:
    from fakes import FakeResolver

    resolver = FakeResolver()
    resolver.add("9.2.0.192.zen.test", "A", "127.0.0.2")
    services = make_services(
        make_config(
            lists=ListsConfig(allow=("192.0.2.0/24",)),
            dnsbl=DnsblConfig(sites=("zen.test*5",)),
        ),
        resolver=resolver,
    )
    from mailmoat.checks.registry import build_checks
    from mailmoat.pipeline import Pipeline

    pipeline = Pipeline(services, build_checks(services))
    tx = new_tx("192.0.2.9")
    for stage in (Stage.CONNECT, Stage.HELO, Stage.MAIL):
        await pipeline.run(stage, tx)
    decision = await pipeline.run(Stage.RCPT, tx)
    assert decision.action is Action.ACCEPT and resolver.queries == []
