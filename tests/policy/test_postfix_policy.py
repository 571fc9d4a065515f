"""mailmoat as the policy service of a real Postfix (docs/postfix.md, snippet
policy/main.cf), with the real screening checks: greylisting through Postfix
(1 s delay), a denied client refused, an unknown client passed on retry."""

from __future__ import annotations

import asyncio
import smtplib
import time
from pathlib import Path

import pytest

from mailmoat.config import load_config
from mailmoat.policy import PolicyServer
from mailmoat.runtime import Runtime
from postfix_snippets import main_cf

pytestmark = pytest.mark.integration

BOX = "ham@mailmoat.test"
MESSAGE = b"From: a@ham.test\r\nTo: ham@mailmoat.test\r\nSubject: policy\r\n\r\nhello\r\n"


def _send(port: int, source: str) -> tuple[int, str]:
    """(code, text) of the RCPT answer; 250 means the message went through."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30, source_address=(source, 0)) as client:
        client.ehlo("client.ham.test")
        client.mail("a@ham.test")
        code, text = client.rcpt(BOX)
        if code != 250:
            return code, text.decode()
        client.data(MESSAGE)
        return code, text.decode()


def write_config(tmp_path: Path, store_url: str, port: int) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(
        f"""
[policy]
listen = "127.0.0.1:{port}"
[store]
url = "{store_url}"
[greylist]
enabled = true
mode = "all"
delay = 1
[lists]
deny = ["127.0.0.66/32"]
[stats]
enabled = false
[dns]
timeout = 1
"""
    )
    return path


async def test_greylisting_and_deny_list_through_postfix(postfix_factory, tmp_path) -> None:
    config = load_config(write_config(tmp_path, f"sqlite:///{tmp_path}/state.db", 0))
    runtime = await Runtime.open(config, "policy")
    records = []
    runtime.pipeline.recorders.append(records.append)
    server = PolicyServer(runtime)
    _host, port = await server.start()
    params = main_cf("policy/main.cf", {"127.0.0.1:10040": f"127.0.0.1:{port}"})
    postfix = postfix_factory(virtual_mailboxes=[BOX], main_cf=params)
    try:
        code, text = await asyncio.to_thread(_send, postfix.port, "127.0.0.5")
        assert code == 451, text
        assert "4.7.1" in text and "Greylisted" in text
        # Too early: still deferred.
        assert (await asyncio.to_thread(_send, postfix.port, "127.0.0.5"))[0] == 451
        time.sleep(1.2)
        assert (await asyncio.to_thread(_send, postfix.port, "127.0.0.5"))[0] == 250
        # Another client of the same /24 with the same envelope shares the triplet.
        assert (await asyncio.to_thread(_send, postfix.port, "127.0.0.6"))[0] == 250
        code, text = await asyncio.to_thread(_send, postfix.port, "127.0.0.66")
        assert code == 554 and "5.7.1" in text
        postfix.wait_delivered(2, timeout=20)
        assert len(postfix.maildir_messages(BOX)) == 2
        reasons = [(r.front, r.reason, r.client_ip) for r in records]
        assert reasons == [
            ("policy", "greylist", "127.0.0.5"),
            ("policy", "greylist", "127.0.0.5"),
            ("policy", "denylist", "127.0.0.66"),
        ]
    finally:
        await server.stop(grace=1)
        await runtime.close()
