"""Releasing from the quarantine: upstream (before-queue path) and Maildir."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from mailmoat.config import Config, DeliveryConfig, QuarantineConfig, RelayConfig
from mailmoat.delivery.quarantine import Quarantine
from mailmoat.web.actions import ActionError, release
from servers import SmtpSink

MESSAGE = b"From: a@sender.example\r\nSubject: held\r\n\r\nbody\r\n"


def _config(tmp_path: Path, upstream: str = "") -> Config:
    return replace(
        Config(),
        relay=RelayConfig(domains=("example.org",), upstream=upstream, connect_timeout=3),
        delivery=DeliveryConfig(maildir=str(tmp_path / "maildir")),
        quarantine=QuarantineConfig(directory=str(tmp_path / "q")),
    )


async def _held(config: Config) -> tuple[Quarantine, str]:
    box = Quarantine(config.quarantine.directory)
    meta: dict[str, object] = {
        "queue_id": "Q1",
        "mail_from": "a@sender.example",
        "rcpts": ["bob@example.org", "carol@example.org"],
        "client_ip": "192.0.2.1",
        "subject": "held",
        "score": 12.0,
        "symbols": {},
    }
    return box, await box.put(MESSAGE, meta)


async def test_release_to_the_maildir(tmp_path: Path) -> None:
    config = _config(tmp_path)
    box, message_id = await _held(config)
    where = await release(config, box, message_id)
    assert "Maildir" in where
    delivered = list((tmp_path / "maildir" / "new").iterdir())
    assert [p.read_bytes() for p in delivered] == [MESSAGE]
    assert box.list() == []
    with pytest.raises(ActionError):
        await release(config, box, message_id)


@pytest.mark.integration
async def test_release_upstream_and_refusal_keeps_it(tmp_path: Path, smtp_sink: SmtpSink) -> None:
    config = _config(tmp_path, smtp_sink.address)
    box, message_id = await _held(config)
    where = await release(config, box, message_id)
    assert "2 of 2 recipients" in where
    (got,) = smtp_sink.messages()
    assert got.mail_from == "a@sender.example"
    assert got.rcpt_to == ("bob@example.org", "carol@example.org")
    assert got.data.endswith(MESSAGE)
    assert box.list() == []

    # Upstream down: an error, and the message stays in the quarantine.
    down = _config(tmp_path, "127.0.0.1:9")
    box, message_id = await _held(down)
    with pytest.raises(ActionError, match="upstream"):
        await release(down, box, message_id)
    assert [m.id for m in box.list()] == [message_id]
