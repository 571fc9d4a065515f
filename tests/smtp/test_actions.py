"""Score thresholds become the right outcome at end of DATA, on a real session."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway_harness import GatewayThread
from wire_client import RawClient

pytestmark = pytest.mark.integration

# No Date header: the header check reports HDR_MISSING_DATE, whose score each
# test steers through [scores] to land in one action band.
PAYLOAD = (
    b"From: a@sender.test\r\nTo: bob@example.org\r\nSubject: steer\r\n"
    b"Message-ID: <steer@sender.test>\r\n\r\nbody\r\n"
)
BANDS = {"reject": 15.0, "quarantine": 12.0, "soft_reject": 9.0, "add_header": 6.0}


def send(gateway: GatewayThread) -> str:
    client = RawClient(gateway.port)
    client.command("EHLO client.sender.test")
    client.command("MAIL FROM:<a@sender.test>")
    assert client.command("RCPT TO:<bob@example.org>").startswith("250")
    assert client.command("DATA").startswith("354")
    client.send(PAYLOAD + b".\r\n")
    return client.reply()


def steered(tmp_path: Path, score: float) -> GatewayThread:
    return GatewayThread(
        tmp_path,
        {
            "actions": BANDS,
            # Only our symbol counts: silence the classifier and auth checks.
            "checks": {name: {"enabled": False} for name in ("classifier", "bulk")},
            "scores": {"HDR_MISSING_DATE": score},
            # SpamAssassin's MISSING_DATE would add its own score.
            "rules": {"sa_default": False},
        },
    )


def test_reject_band(tmp_path: Path) -> None:
    with steered(tmp_path, 20) as gateway:
        assert send(gateway).startswith("554 5.7.1")
        assert gateway.maildir_messages() == []


def test_quarantine_band_keeps_message_aside(tmp_path: Path) -> None:
    with steered(tmp_path, 13) as gateway:
        assert send(gateway).startswith("250 2.0.0")
        assert gateway.maildir_messages() == []
        [item] = gateway.gateway.quarantine.list()  # type: ignore[union-attr]
        assert item.rcpts == ["bob@example.org"]
        meta, raw = gateway.gateway.quarantine.get(item.id)  # type: ignore[union-attr,misc]
        assert raw.endswith(PAYLOAD) and b"X-Spam-Flag: YES" in raw
        assert json.loads(json.dumps(meta.symbols))["HDR_MISSING_DATE"] == 13


def test_soft_reject_band(tmp_path: Path) -> None:
    with steered(tmp_path, 10) as gateway:
        assert send(gateway).startswith("451 4.7.1")
        assert gateway.maildir_messages() == []


def test_add_header_band(tmp_path: Path) -> None:
    with steered(tmp_path, 7) as gateway:
        assert send(gateway).startswith("250")
        [stored] = gateway.maildir_messages()
        assert b"X-Spam-Flag: YES" in stored
        assert b"X-Spam-Status: Yes, score=7.00 required=6.00" in stored


def test_accept_band(tmp_path: Path) -> None:
    with steered(tmp_path, 1) as gateway:
        assert send(gateway).startswith("250")
        [stored] = gateway.maildir_messages()
        assert b"X-Spam-Flag" not in stored and b"X-Spam-Status: No" in stored


def test_forged_spam_headers_from_the_client_are_removed(tmp_path: Path) -> None:
    with steered(tmp_path, 7) as gateway:
        client = RawClient(gateway.port)
        client.command("EHLO client.sender.test")
        client.command("MAIL FROM:<a@sender.test>")
        client.command("RCPT TO:<bob@example.org>")
        client.command("DATA")
        client.send(b"X-Spam-Status: No, score=-100\r\nX-Spam-Flag: NO\r\n" + PAYLOAD + b".\r\n")
        assert client.reply().startswith("250")
        [stored] = gateway.maildir_messages()
        assert b"score=-100" not in stored and b"X-Spam-Flag: NO" not in stored
