"""postscreen-style tests of the SMTP front: pregreet, non-SMTP commands,
bare newlines, pipelining without PIPELINING; allowlisted clients skip them."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from screening_support import ScreeningGateway, envelope, raw_connect, read_reply

pytestmark = pytest.mark.integration

BANNER = b"220 mx.mailmoat.test"


def test_pregreet_bot_is_dropped(tmp_path: Path) -> None:
    with ScreeningGateway(tmp_path, {"pregreet": {"delay": 1}}) as gw:
        sock = raw_connect(gw, "127.0.20.1")
        sock.sendall(b"EHLO bot.example\r\n")  # talks before the banner
        reply = read_reply(sock)
        assert reply == b"521 5.5.1 Protocol error, goodbye\r\n", "no banner, just 521"
        assert sock.recv(100) == b""
        record = gw.record_for("127.0.20.1")
        assert (record.reason, record.stage) == ("pregreet", "connect")
        assert "PREGREET" in {s.name for s in record.symbols}


def test_patient_client_is_delayed_once_then_remembered(tmp_path: Path) -> None:
    with ScreeningGateway(tmp_path, {"pregreet": {"delay": 1}}) as gw:
        started = time.monotonic()
        with raw_connect(gw, "127.0.20.2") as sock:
            assert read_reply(sock).startswith(BANNER)
        assert 0.9 < time.monotonic() - started < 3
        started = time.monotonic()
        assert envelope(gw, "127.0.20.2")[0] == 250
        assert time.monotonic() - started < 0.8, "cached pass: no second delay"
        started = time.monotonic()
        with raw_connect(gw, "127.0.20.3") as sock:  # a different client waits again
            assert read_reply(sock).startswith(BANNER)
        assert time.monotonic() - started > 0.9


def test_pregreet_enforce_refuses_recipients(tmp_path: Path) -> None:
    with ScreeningGateway(tmp_path, {"pregreet": {"delay": 1, "action": "enforce"}}) as gw:
        sock = raw_connect(gw, "127.0.20.4")
        sock.sendall(b"HELO early.example\r\n")
        assert read_reply(sock).startswith(BANNER)
        assert read_reply(sock).startswith(b"250")
        sock.sendall(b"MAIL FROM:<a@example.net>\r\n")
        assert read_reply(sock).startswith(b"250")
        sock.sendall(b"RCPT TO:<user@example.org>\r\n")
        assert read_reply(sock).startswith(b"550 5.5.1")
        sock.close()
        assert gw.record_for("127.0.20.4").reason == "pregreet"


def test_allowlisted_client_skips_pregreet(tmp_path: Path) -> None:
    overrides = {"pregreet": {"delay": 2}, "lists": {"allow": ["127.0.21.0/24"]}}
    with ScreeningGateway(tmp_path, overrides) as gw:
        started = time.monotonic()
        sock = raw_connect(gw, "127.0.21.1")
        sock.sendall(b"EHLO eager.example\r\n")  # would be a pregreet violation
        assert read_reply(sock).startswith(BANNER)
        assert time.monotonic() - started < 1
        assert read_reply(sock).startswith(b"250-mx.mailmoat.test")
        sock.close()


@pytest.mark.parametrize(
    ("command", "action", "expected"),
    [
        (b"GET / HTTP/1.1\r\n", "drop", b"521 5.5.1"),
        (b"POST /cgi HTTP/1.0\r\n", "drop", b"521 5.5.1"),
        (b"CONNECT 10.0.0.1:25 HTTP/1.0\r\n", "drop", b"521 5.5.1"),
    ],
    ids=["get", "post", "connect"],
)
def test_non_smtp_command_dropped(
    tmp_path: Path, command: bytes, action: str, expected: bytes
) -> None:
    with ScreeningGateway(tmp_path, {"protocol": {"non_smtp_command": action}}) as gw:
        sock = raw_connect(gw, "127.0.22.1")
        assert read_reply(sock).startswith(BANNER)
        sock.sendall(command)
        assert read_reply(sock).startswith(expected)
        assert sock.recv(100) == b""
        assert gw.record_for("127.0.22.1").reason == "protocol"


def dialogue(gw: ScreeningGateway, source: str, lines: list[bytes]) -> list[bytes]:
    """Send each line and collect one reply per line (line by line)."""
    sock = raw_connect(gw, source)
    replies = [read_reply(sock)]
    for line in lines:
        sock.sendall(line)
        replies.append(read_reply(sock))
    sock.close()
    return replies


def test_bare_newline_enforced(tmp_path: Path) -> None:
    with ScreeningGateway(tmp_path, {"protocol": {"bare_newline": "enforce"}}) as gw:
        replies = dialogue(
            gw,
            "127.0.23.1",
            [
                b"HELO sloppy.example\n",
                b"MAIL FROM:<a@example.net>\r\n",
                b"RCPT TO:<u@example.org>\r\n",
            ],
        )
        assert [r[:3] for r in replies] == [b"220", b"250", b"250", b"550"]
        record = gw.record_for("127.0.23.1")
        assert record.reason == "protocol"
        assert "PROTOCOL_BARE_NEWLINE" in {s.name for s in record.symbols}


def test_bare_newline_ignored_is_only_a_symbol(tmp_path: Path) -> None:
    with ScreeningGateway(tmp_path, {"protocol": {"bare_newline": "ignore"}}) as gw:
        replies = dialogue(
            gw,
            "127.0.23.2",
            [
                b"HELO sloppy.example\n",
                b"MAIL FROM:<a@example.net>\r\n",
                b"RCPT TO:<u@example.org>\r\n",
            ],
        )
        assert [r[:3] for r in replies] == [b"220", b"250", b"250", b"250"]


def test_pipelining_without_advertisement(tmp_path: Path) -> None:
    with ScreeningGateway(tmp_path, {"protocol": {"pipelining": "enforce"}}) as gw:
        sock = raw_connect(gw, "127.0.24.1")
        assert read_reply(sock).startswith(BANNER)
        # HELO (not EHLO): PIPELINING was never offered, yet it all comes at once.
        sock.sendall(
            b"HELO bot.example\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<u@example.org>\r\n"
        )
        data = b""
        deadline = time.monotonic() + 5
        while data.count(b"\r\n") < 3 and time.monotonic() < deadline:
            data += sock.recv(4096)
        sock.close()
        assert [line[:3] for line in data.split(b"\r\n")[:3]] == [b"250", b"250", b"550"]
        assert "PROTOCOL_PIPELINING" in {s.name for s in gw.record_for("127.0.24.1").symbols}


def test_pipelining_after_ehlo_is_fine(tmp_path: Path) -> None:
    with ScreeningGateway(tmp_path, {"protocol": {"pipelining": "enforce"}}) as gw:
        sock = raw_connect(gw, "127.0.24.2")
        assert read_reply(sock).startswith(BANNER)
        sock.sendall(b"EHLO good.example\r\n")
        assert read_reply(sock).startswith(b"250-")
        sock.sendall(b"MAIL FROM:<a@example.net>\r\nRCPT TO:<u@example.org>\r\n")
        data = b""
        while data.count(b"\r\n") < 2:
            data += sock.recv(4096)
        sock.close()
        assert [line[:3] for line in data.split(b"\r\n")[:2]] == [b"250", b"250"]


def test_allowlisted_client_skips_protocol_enforcement(tmp_path: Path) -> None:
    overrides = {
        "protocol": {"bare_newline": "enforce"},
        "lists": {"allow": ["127.0.25.0/24"]},
    }
    with ScreeningGateway(tmp_path, overrides) as gw:
        replies = dialogue(
            gw,
            "127.0.25.1",
            [
                b"HELO sloppy.example\n",
                b"MAIL FROM:<a@example.net>\r\n",
                b"RCPT TO:<u@example.org>\r\n",
            ],
        )
        assert [r[:3] for r in replies] == [b"220", b"250", b"250", b"250"]
