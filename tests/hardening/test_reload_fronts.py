"""SIGHUP on ``mailmoat milter`` and ``mailmoat policy``: both reload their
config (logged) and apply it; a broken file keeps the running one.

Before the fix SIGHUP's default action killed either process without a log
line.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway_harness import toml_dumps
from mailmoat.milter import codec
from milter.mta import FakeMta
from serve_harness import MailmoatProcess
from servers import free_port

pytestmark = pytest.mark.integration

DENIED = "192.0.2.77"


class Front(MailmoatProcess):
    """``mailmoat milter`` or ``mailmoat policy`` with a config to rewrite."""

    def __init__(self, tmp_path: Path, command: str) -> None:
        super().__init__(tmp_path, command, free_port())
        self.write({})
        self.start(listeners=0)

    def write(self, extra: dict[str, dict[str, Any]]) -> None:
        sections: dict[str, dict[str, Any]] = {
            self.command: {"listen": f"127.0.0.1:{self.port}"},
            "relay": {"domains": ["example.org"]},
            "store": {"url": f"sqlite:///{self.directory / 'store.db'}"},
            "dns": {"nameserver": "127.0.0.1:9", "timeout": 0.2},
            "stats": {"enabled": False},
        }
        sections.update(extra)
        self.config_path.write_text(toml_dumps(sections))


@pytest.fixture(params=["milter", "policy"])
def front(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Front]:
    with Front(tmp_path, request.param) as running:
        yield running


def _policy_answer(port: int, client_ip: str) -> str:
    request = {
        "request": "smtpd_access_policy",
        "protocol_state": "RCPT",
        "protocol_name": "ESMTP",
        "client_address": client_ip,
        "client_name": "mail.sender.test",
        "helo_name": "mail.sender.test",
        "sender": "a@sender.test",
        "recipient": "b@example.org",
        "instance": f"{time.monotonic()}",
    }
    payload = "".join(f"{k}={v}\n" for k, v in request.items()).encode() + b"\n"

    async def ask() -> str:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(payload)
        answer = await asyncio.wait_for(reader.readuntil(b"\n\n"), 10)
        writer.close()
        return answer[7:-2].decode()

    return asyncio.run(ask())


def _milter_answer(port: int, client_ip: str) -> str:
    """The first answer other than continue, through end of message."""

    async def ask() -> str:
        mta = await FakeMta.connect("127.0.0.1", port)
        packets = list(await mta.session(client_ip))
        if packets[-1].command == codec.CONTINUE:
            steps = await mta.message(
                "a@sender.test", ["b@example.org"], [("Subject", "hello")], b"hello\r\n"
            )
            for step in steps.values():
                packets += step
        await mta.quit()
        for packet in packets:
            if packet.command == b"y":  # a reply code: "550 5.7.1 ..."
                return packet.data.rstrip(b"\x00").decode()
            if packet.command == codec.REJECT:
                return "5"
        return "continue"

    return asyncio.run(ask())


def _refused(front: Front) -> bool:
    if front.command == "policy":
        return _policy_answer(front.port, DENIED).upper().startswith(("REJECT", "5"))
    return _milter_answer(front.port, DENIED).startswith("5")


def test_sighup_reloads_and_applies_the_new_config(front: Front) -> None:
    assert not _refused(front)
    front.write({"lists": {"deny": [DENIED]}})
    front.hangup(f"{front.command} reloaded config", timeout=10)
    assert _refused(front), "the reloaded deny list is not applied"
    # A broken file: one error line, the running config stays.
    front.config_path.write_text("[lists\n")
    front.hangup(f"{front.command} reload failed", timeout=10)
    assert "Traceback" not in front.output()
    assert _refused(front)
    assert front.proc.poll() is None
