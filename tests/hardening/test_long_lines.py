"""Ham with lines past RFC 5322's 998 characters is delivered, not refused.

Postfix takes lines of any length (it splits them at line_length_limit =
2048 internally and joins them on delivery); the gateway used to refuse
them with 554 5.6.0 by default, bouncing real ham (5 of 2,752 corpus ham).
By default lines of any length now pass on untouched; an administrator may
still set ``smtp.max_line_length`` to refuse them.
"""

from __future__ import annotations

import smtplib
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway_harness import GatewayThread
from servers import Postfix
from wire_client import RawClient

pytestmark = pytest.mark.integration

LONG_LINE = b"<p>" + b"word " * 1600 + b"</p>"  # 8,007 characters, no space to fold at
HAM = (
    b"From: Alice <alice@sender.test>\r\n"
    b"To: bob@example.org\r\n"
    b"Subject: newsletter with one long line\r\n"
    b"Date: Sat, 28 Nov 2026 10:00:00 +0000\r\n"
    b"Message-ID: <long-1@sender.test>\r\n"
    b"Content-Type: text/html\r\n"
    b"\r\n" + LONG_LINE + b"\r\n"
)


def test_a_long_line_is_accepted_and_stored_untouched(tmp_path: Path) -> None:
    with GatewayThread(tmp_path) as gateway:
        with smtplib.SMTP("127.0.0.1", gateway.port, timeout=30) as client:
            client.ehlo("client.sender.test")
            assert client.sendmail("alice@sender.test", ["bob@example.org"], HAM) == {}
        [stored] = gateway.maildir_messages()
    assert stored.endswith(HAM)


def test_a_long_line_reaches_a_real_postfix_upstream_intact(
    tmp_path: Path, postfix_factory: Callable[..., Postfix]
) -> None:
    postfix = postfix_factory(virtual_mailboxes=["bob@example.org"])
    overrides: dict[str, dict[str, object]] = {
        "relay": {"domains": ["example.org"], "upstream": postfix.address}
    }
    with (
        GatewayThread(tmp_path, overrides) as gateway,
        smtplib.SMTP("127.0.0.1", gateway.port, timeout=30) as client,
    ):
        client.ehlo("client.sender.test")
        assert client.sendmail("alice@sender.test", ["bob@example.org"], HAM) == {}
    postfix.wait_delivered(1, timeout=20)
    [delivered] = postfix.maildir_messages("bob@example.org")
    assert LONG_LINE + b"\n" in delivered


def test_a_configured_limit_still_refuses_and_the_session_goes_on(tmp_path: Path) -> None:
    with GatewayThread(tmp_path, {"smtp": {"max_line_length": 998}}) as gateway:
        client = RawClient(gateway.port)
        client.command("EHLO client.sender.test")
        for message, expected in ((HAM, "554 5.6.0"), (HAM.replace(LONG_LINE, b"short"), "250")):
            assert client.command("MAIL FROM:<alice@sender.test>").startswith("250")
            assert client.command("RCPT TO:<bob@example.org>").startswith("250")
            assert client.command("DATA").startswith("354")
            assert client.command(message + b".").startswith(expected)
        assert len(gateway.maildir_messages()) == 1
