"""Recipients past ``smtp.max_recipients``: 452 each, as Postfix answers,
without ending the session until ``smtp.recipient_overshoot_limit``.

Before the fix every 452 counted toward ``protocol.hard_error_limit``, so a
pipelining client sending more than about 120 recipients got 421 before its
DATA and the message was lost for the first 100 too.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway_harness import GatewayThread
from wire_client import RawClient

pytestmark = pytest.mark.integration


def _pipelined(client: RawClient, count: int) -> list[str]:
    lines = [b"MAIL FROM:<a@sender.test>"]
    lines += [f"RCPT TO:<user{n}@example.org>".encode() for n in range(count)]
    lines.append(b"DATA")
    client.send(b"\r\n".join(lines) + b"\r\n")
    return [client.reply() for _ in lines]


def test_pipelined_recipients_over_the_limit_get_452_and_the_message_goes_through(
    tmp_path: Path,
) -> None:
    with GatewayThread(tmp_path) as gateway:
        client = RawClient(gateway.port)
        client.command("EHLO client.sender.test")
        replies = _pipelined(client, 250)
        assert replies[0].startswith("250")
        assert all(r.startswith("250 2.1.5") for r in replies[1:101])
        assert all(r.startswith("452 4.5.3") for r in replies[101:251])
        assert replies[-1].startswith("354"), replies[-1]
        assert client.command(b"Subject: many\r\n\r\nbody\r\n.").startswith("250 2.0.0")
        assert client.command("QUIT").startswith("221")
        [stored] = gateway.maildir_messages()
        assert b"Subject: many" in stored


def test_recipients_beyond_the_overshoot_limit_count_as_errors(tmp_path: Path) -> None:
    overrides = {
        "smtp": {"max_recipients": 3, "recipient_overshoot_limit": 5},
        "protocol": {"hard_error_limit": 4},
    }
    with GatewayThread(tmp_path, overrides) as gateway:
        client = RawClient(gateway.port)
        client.command("EHLO client.sender.test")
        client.command("MAIL FROM:<a@sender.test>")
        replies = [client.command(f"RCPT TO:<u{n}@example.org>") for n in range(3 + 5 + 4)]
        assert all(r.startswith("250") for r in replies[:3])
        assert all(r.startswith("452 4.5.3") for r in replies[3:])
        # Four errors past the overshoot: the next command ends the session.
        assert client.command("NOOP").startswith("421 4.7.0")
        assert client.closed()
