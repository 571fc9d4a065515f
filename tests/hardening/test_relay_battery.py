"""Open-relay battery: every trick for making the gateway relay is refused.

A real gateway accepts mail for ``example.org`` only. Each recipient form
below names, or could be read by some MTA as naming, a mailbox elsewhere
(other domains, the ``%`` hack, ``!`` paths, source routes, quoted local
parts holding ``@``, trailing dots, IP literals, look-alike and unicode
domains, ``localhost``): each must get a 5xx and no message may come of it,
while the same session's ``example.org`` recipients (any case) are accepted
and delivered.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gateway_harness import GatewayThread
from wire_client import RawClient

pytestmark = pytest.mark.integration

TRICKS: list[str] = [
    "<bob@elsewhere.test>",
    "<BOB@ELSEWHERE.TEST>",
    "<bob@Elsewhere.Test>",
    "<bob@elsewhere.test.>",
    "<bob@example.org.elsewhere.test>",
    "<bob@EXAMPLE.ORG.elsewhere.test>",
    "<bob@example.org.elsewhere.test.>",
    "<bob@notexample.org>",
    "<bob@example.org-elsewhere.test>",
    "<bob@sub.example.org>",
    "<bob@example.com>",
    "<bob@exampleorg>",
    "<bob@example..org>",
    "<bob@.example.org>",
    "<bob@example.org..>",
    "<bob%elsewhere.test@example.org>",
    "<bob%elsewhere.test>",
    "<bob@elsewhere.test%example.org>",
    "<bob@example.org%elsewhere.test>",
    "<elsewhere.test!bob@example.org>",
    "<elsewhere.test!bob>",
    "<example.org!elsewhere.test!bob>",
    "<@example.org:bob@elsewhere.test>",
    "<@a.test,@example.org:bob@elsewhere.test>",
    "<@elsewhere.test:bob@example.org>",
    "<@example.org:bob@example.org>",
    '<"bob@elsewhere.test"@example.org>',
    '<"bob%elsewhere.test"@example.org>',
    '<"elsewhere.test!bob"@example.org>',
    '<"bob@elsewhere.test">',
    '<"bob"@elsewhere.test>',
    "<bob@example.org@elsewhere.test>",
    "<bob@elsewhere.test@example.org>",
    "<bob@[127.0.0.1]>",
    "<bob@[192.0.2.1]>",
    "<bob@[IPv6:::1]>",
    "<bob@[example.org]>",
    "<bob@127.0.0.1>",
    "<bob@0x7f000001>",
    "<bob@localhost>",
    "<bob@localhost.>",
    "<bob@LOCALHOST>",
    "<bob@localhost.localdomain>",
    "<postmaster@elsewhere.test>",
    "<bob+tag@elsewhere.test>",
    "<bob@xn--exmple-cua.org>",
    "<bob@example.org:25>",
    "<bob@example.org,bob@elsewhere.test>",
    "<<bob@elsewhere.test>>",
    "<bob@elsewhere.test",
    "bob@elsewhere.test",
    "bob@example.org",
    " <bob@elsewhere.test>",
    "<bob@elsewhere.test> NOTIFY=NEVER",
    "<bob@ex%61mple.org>",
    "<bob@example.org\\>",
]
# Unicode look-alikes, sent with SMTPUTF8 (without it they are refused with
# 553 5.6.7 before relay control is even asked).
UNICODE_TRICKS: list[str] = [
    "<bob@exаmple.org>",  # Cyrillic a
    "<bob@example.оrg>",  # Cyrillic o
    "<bob@ехample.org>",  # Cyrillic e and x
    "<bob@example.org\u200b>",  # zero-width space
    "<bob@example\u3002org>",  # ideographic full stop
    "<bob@example\uff0eorg>",  # fullwidth full stop
    "<bob@ｅxample.org>",  # fullwidth e
    "<bob@elsewhere.test\u2024>",  # one dot leader
]
OURS = [
    "<bob@example.org>",
    "<BOB@EXAMPLE.ORG>",
    "<bob@Example.Org>",
    "<bob@example.org.>",
]
MESSAGE = (
    b"From: Alice <alice@sender.test>\r\n"
    b"To: bob@example.org\r\n"
    b"Subject: relay battery\r\n"
    b"Date: Sat, 28 Nov 2026 10:00:00 +0000\r\n"
    b"Message-ID: <relay-battery@sender.test>\r\n"
    b"\r\n"
    b"hello\r\n.\r\n"
)


def test_the_battery_has_at_least_fifty_tricks() -> None:
    assert len(set(TRICKS + UNICODE_TRICKS)) >= 50


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayThread]:
    overrides: dict[str, dict[str, object]] = {
        "relay": {"domains": ["example.org"]},
        "protocol": {"hard_error_limit": 1000},
        "checks": {name: {"enabled": False} for name in ("helo", "spf", "greylist")},
    }
    with GatewayThread(tmp_path_factory.mktemp("relay"), overrides) as running:
        yield running


def rcpt_reply(gateway: GatewayThread, recipient: str, *, utf8: bool = False) -> str:
    client = RawClient(gateway.port)
    try:
        assert client.command("EHLO client.sender.test").startswith("250")
        options = " SMTPUTF8" if utf8 else ""
        assert client.command(f"MAIL FROM:<alice@sender.test>{options}").startswith("250")
        reply: str = client.command(f"RCPT TO:{recipient}".encode())
        if not reply.startswith("250"):
            # Nothing may be accepted for delivery after a refused recipient.
            assert client.command("DATA")[:1] == "5"
        client.command("QUIT")
        return reply
    finally:
        client.close()


@pytest.mark.parametrize("recipient", TRICKS)
def test_a_relay_trick_is_refused(gateway: GatewayThread, recipient: str) -> None:
    reply = rcpt_reply(gateway, recipient)
    assert reply[:1] == "5", (recipient, reply)


@pytest.mark.parametrize("recipient", UNICODE_TRICKS)
def test_a_unicode_look_alike_is_refused(gateway: GatewayThread, recipient: str) -> None:
    for utf8 in (False, True):
        reply = rcpt_reply(gateway, recipient, utf8=utf8)
        assert reply[:1] == "5", (recipient, utf8, reply)


def test_nothing_was_delivered_by_the_tricks_and_our_domain_is_delivered(
    gateway: GatewayThread,
) -> None:
    before = len(gateway.maildir_messages())
    assert before == 0  # no trick ever reached DATA
    client = RawClient(gateway.port)
    try:
        assert client.command("EHLO client.sender.test").startswith("250")
        assert client.command("MAIL FROM:<alice@sender.test>").startswith("250")
        for trick in TRICKS[:10]:
            assert client.command(f"RCPT TO:{trick}")[:1] == "5", trick
        for recipient in OURS:
            reply = client.command(f"RCPT TO:{recipient}")
            assert reply.startswith("250"), (recipient, reply)
        assert client.command("DATA").startswith("354")
        assert client.command(MESSAGE.removesuffix(b"\r\n")).startswith("250")
        client.command("QUIT")
    finally:
        client.close()
    assert len(gateway.maildir_messages()) == before + 1
