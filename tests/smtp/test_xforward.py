"""XFORWARD from a trusted proxy: each transaction screened as the real client."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway_harness import GatewayThread
from mailmoat.smtp.xforward import parse_xforward
from wire_client import RawClient

pytestmark = pytest.mark.integration


def test_parse_xforward() -> None:
    assert parse_xforward("ADDR=192.0.2.7 NAME=[UNAVAILABLE] helo=bot.test") == {
        "ADDR": "192.0.2.7",
        "NAME": "",
        "HELO": "bot.test",
    }
    assert parse_xforward("ADDR=IPV6:2001:db8::1")["ADDR"] == "2001:db8::1"
    for bad in ("", "ADDR=not-an-ip", "COLOR=blue", "ADDR"):
        with pytest.raises(ValueError):
            parse_xforward(bad)


def deliver(client: RawClient) -> str:
    client.command("MAIL FROM:<a@sender.test>")
    client.command("RCPT TO:<bob@example.org>")
    client.command("DATA")
    client.send(b"Subject: forwarded\r\n\r\nbody\r\n.\r\n")
    return client.reply()


def test_trusted_proxy_forwards_client_identity(tmp_path: Path) -> None:
    # SpamAssassin's stock rules off: the forwarded bot's relay would score it
    # into the quarantine, and this test reads the Maildir.
    overrides = {"smtp": {"xforward_hosts": ["127.0.0.1/32"]}, "rules": {"sa_default": False}}
    with GatewayThread(tmp_path, overrides) as gateway:
        client = RawClient(gateway.port)
        assert "XFORWARD NAME ADDR PORT PROTO HELO" in client.command("EHLO postfix.local")
        reply = client.command("XFORWARD ADDR=192.0.2.7 NAME=[UNAVAILABLE] HELO=bot.example")
        assert reply.startswith("250 2.0.0")
        assert deliver(client).startswith("250")
        # The next transaction without XFORWARD is the proxy's own again.
        assert deliver(client).startswith("250")
        stored = b"\n".join(gateway.maildir_messages())
        assert stored.count(b"from bot.example (unknown [192.0.2.7])") == 1
        assert stored.count(b"from postfix.local (unknown [127.0.0.1])") == 1
        assert client.command("MAIL FROM:<a@sender.test>").startswith("250")
        assert client.command("XFORWARD ADDR=192.0.2.8").startswith("503 5.5.1")
        assert client.command("XFORWARD ADDR=nonsense").startswith("503")
        client.command("RSET")
        assert client.command("XFORWARD ADDR=nonsense").startswith("501 5.5.4")


def test_untrusted_client_is_not_offered_xforward(tmp_path: Path) -> None:
    with GatewayThread(tmp_path, {"smtp": {"xforward_hosts": ["127.0.0.1/32"]}}) as gateway:
        client = RawClient(gateway.port, source="127.0.0.2")
        assert "XFORWARD" not in client.command("EHLO sneaky.example")
        assert client.command("XFORWARD ADDR=192.0.2.7").startswith("502 5.5.1")
