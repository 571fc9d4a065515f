"""Rate limits, greylisting and allowlists end to end, from many loopback sources."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from screening_support import ScreeningGateway, envelope, raw_connect, read_reply

pytestmark = pytest.mark.integration


def test_concurrency_per_ip_and_per_net(tmp_path: Path) -> None:
    limits = {"concurrent_per_ip": 2, "concurrent_per_net": 4}
    with ScreeningGateway(tmp_path, {"ratelimit": limits}) as gw:
        held = [raw_connect(gw, "127.0.3.1") for _ in range(2)]
        assert all(read_reply(s).startswith(b"220 ") for s in held)
        third = raw_connect(gw, "127.0.3.1")
        reply = read_reply(third)
        assert reply.startswith(b"421 4.7.0 Too many concurrent sessions from 127.0.3.1")
        assert third.recv(100) == b"", "closed after 421"
        held += [raw_connect(gw, f"127.0.3.{n}") for n in (2, 3)]
        assert all(read_reply(s).startswith(b"220 ") for s in held[2:])
        other = raw_connect(gw, "127.0.3.9")  # a new IP, but the /24 is full
        assert b"127.0.3.0/24" in read_reply(other)
        assert read_reply(raw_connect(gw, "127.0.4.1")).startswith(b"220 ")  # another /24
        held.pop(0).close()
        time.sleep(0.3)  # the slot is given back when the session ends
        again = raw_connect(gw, "127.0.3.1")
        assert read_reply(again).startswith(b"220 ")
        for sock in [*held, third, other, again]:
            sock.close()
        record = gw.record_for("127.0.3.9")
        assert (record.reason, record.stage) == ("rate_limit", "connect")


def test_connection_rate_per_ip_and_per_net(tmp_path: Path) -> None:
    limits = {"connections_per_ip": 3, "connections_per_net": 5}
    with ScreeningGateway(tmp_path, {"ratelimit": limits}) as gw:
        replies = []
        for _ in range(4):
            with raw_connect(gw, "127.0.5.1") as sock:
                replies.append(read_reply(sock)[:3])
        assert replies == [b"220", b"220", b"220", b"421"]
        with raw_connect(gw, "127.0.5.2") as sock:
            assert read_reply(sock).startswith(b"220 "), "5 connections from the /24"
        with raw_connect(gw, "127.0.5.3") as sock:
            assert read_reply(sock).startswith(b"421 4.7.0 Too many connections from 127.0.5.0/24")


def test_message_and_recipient_rates(tmp_path: Path) -> None:
    limits = {"messages_per_ip": 2, "recipients_per_sender": 3}
    with ScreeningGateway(tmp_path, {"ratelimit": limits}) as gw:
        assert envelope(gw, "127.0.6.1")[0] == 250
        assert envelope(gw, "127.0.6.1")[0] == 250
        code, text = envelope(gw, "127.0.6.1")
        assert code == 451 and "Too many messages from 127.0.6.1" in text
        with gw.client("127.0.6.2") as smtp:
            smtp.ehlo("client.example.net")
            smtp.mail("sender@example.net")  # 2 recipients counted above already
            codes = [smtp.rcpt(f"u{n}@example.org")[0] for n in range(3)]
        assert codes == [250, 451, 451]


def test_greylist_cycle_and_auto_allowlist(tmp_path: Path) -> None:
    greylist = {"enabled": True, "mode": "all", "delay": 1, "auto_allowlist": 2}
    with ScreeningGateway(tmp_path, {"greylist": greylist}) as gw:
        code, text = envelope(gw, "127.0.7.1")
        assert code == 451 and text.startswith("4.7.1 Greylisted")
        assert envelope(gw, "127.0.7.1")[0] == 451, "too early"
        time.sleep(1.1)
        assert envelope(gw, "127.0.7.2")[0] == 250, "retry passes (same /24)"
        assert envelope(gw, "127.0.7.1")[0] == 250, "known triplet"
        assert envelope(gw, "127.0.7.1", rcpt="other@example.org")[0] == 451
        time.sleep(1.1)
        assert envelope(gw, "127.0.7.1", rcpt="other@example.org")[0] == 250
        # Two successful retries: the whole /24 is now exempt, new triplets too.
        assert envelope(gw, "127.0.7.3", rcpt="third@example.org")[0] == 250
        assert "GREYLIST_AUTO_ALLOWLIST" in {s.name for s in gw.record_for("127.0.7.3").symbols}
        assert envelope(gw, "127.0.8.1", rcpt="third@example.org")[0] == 451
        assert len(gw.maildir_messages()) == 4
        deferred = [r for r in gw.records if r.reason == "greylist"]
        assert len(deferred) == 4 and all(r.reply.startswith("451 4.7.1") for r in deferred)


def test_allowlisted_clients_skip_limits_and_greylisting(tmp_path: Path) -> None:
    list_file = tmp_path / "allow.txt"
    list_file.write_text("# trusted partner\n127.0.9.0/24\n")
    overrides = {
        "greylist": {"enabled": True, "mode": "all", "delay": 60},
        "ratelimit": {"connections_per_ip": 1, "concurrent_per_ip": 1},
        "lists": {"allow_files": [str(list_file)], "deny": ["127.0.10.0/24"]},
    }
    with ScreeningGateway(tmp_path, overrides) as gw:
        for _ in range(3):
            assert envelope(gw, "127.0.9.5")[0] == 250
        assert {s.name for s in gw.record_for("127.0.9.5").symbols} >= {"LIST_ALLOW_NET"}
        code, text = envelope(gw, "127.0.10.5")
        assert (code, text) == (554, "5.7.1 Access denied")
        assert gw.record_for("127.0.10.5").reason == "denylist"
        assert envelope(gw, "127.0.11.5")[0] == 451  # everybody else is greylisted
