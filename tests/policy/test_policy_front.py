"""The policy delegation front: request parsing, decision -> action, sessions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from front_checks import front_config, scripted_runtime
from mailmoat.config import PolicyConfig
from mailmoat.core.record import TransactionRecord
from mailmoat.policy import PolicyServer, format_action, parse_request
from mailmoat.policy.server import RequestError


def _request(**attrs: str) -> bytes:
    base = {
        "request": "smtpd_access_policy",
        "protocol_state": "RCPT",
        "protocol_name": "ESMTP",
        "client_address": "192.0.2.1",
        "client_name": "mail.ham.test",
        "helo_name": "mail.ham.test",
        "sender": "a@ham.test",
        "recipient": "b@mailmoat.test",
        "instance": "1.abc",
    }
    base.update(attrs)
    return "".join(f"{k}={v}\n" for k, v in base.items()).encode() + b"\n"


def test_parse_request_and_format_action() -> None:
    assert parse_request(b"a=1\nb=x=y\n\n") == {"a": "1", "b": "x=y"}
    assert parse_request(b"sender=\r\n") == {"sender": ""}
    with pytest.raises(RequestError):
        parse_request(b"no equals sign\n")
    assert format_action("451 4.7.1 try\nlater") == b"action=451 4.7.1 try later\n\n"


class Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def ask(self, request: bytes) -> str:
        self.writer.write(request)
        await self.writer.drain()
        answer = await asyncio.wait_for(self.reader.readuntil(b"\n\n"), 5)
        assert answer.startswith(b"action=")
        return answer[7:-2].decode()


@pytest.fixture
async def policy(request) -> AsyncIterator[tuple[Client, list[TransactionRecord]]]:
    config = front_config(policy=PolicyConfig(**getattr(request, "param", {})))
    runtime, records = scripted_runtime(config)
    server = PolicyServer(runtime)
    host, port = await server.start()
    client = Client(*await asyncio.open_connection(host, port))
    yield client, records
    client.writer.close()
    await server.stop(grace=1)


async def test_decisions_become_actions(policy) -> None:
    client, records = policy
    # Several requests over one connection, as Postfix sends them.
    assert await client.ask(_request()) == "DUNNO"
    assert await client.ask(_request(recipient="grey@mailmoat.test")) == (
        "451 4.7.1 Greylisted, try again later"
    )
    assert await client.ask(_request(client_address="192.0.2.66", instance="2.x")) == (
        "554 5.7.1 Client host rejected: denied"
    )
    # Not at RCPT: nothing to say.
    assert await client.ask(_request(protocol_state="DATA")) == "DUNNO"
    assert await client.ask(b"request=junk\n\n") == "DUNNO"
    assert [(r.front, r.action, r.stage, r.rcpts) for r in records] == [
        ("policy", "soft_reject", "rcpt", ("grey@mailmoat.test",)),
        ("policy", "reject", "rcpt", ("b@mailmoat.test",)),
    ]
    assert records[1].client_ip == "192.0.2.66"
    assert records[0].helo == "mail.ham.test"


@pytest.mark.parametrize("policy", [{"defer_if_permit": True}], indirect=True)
async def test_defer_if_permit(policy) -> None:
    client, _records = policy
    assert await client.ask(_request(recipient="grey@mailmoat.test")) == (
        "DEFER_IF_PERMIT 4.7.1 Greylisted, try again later"
    )


async def test_one_transaction_runs_connect_stages_once(policy, monkeypatch) -> None:
    client, _records = policy
    from mailmoat.pipeline import Pipeline

    stages: list[str] = []
    original = Pipeline.run

    async def spy(self, stage, tx):  # type: ignore[no-untyped-def]
        stages.append(stage.value)
        return await original(self, stage, tx)

    monkeypatch.setattr(Pipeline, "run", spy)
    for rcpt in ("b@mailmoat.test", "c@mailmoat.test"):
        assert await client.ask(_request(recipient=rcpt)) == "DUNNO"
    await client.ask(_request(instance="9.new"))
    first = ["connect", "helo", "mail", "rcpt", "rcpt"]
    assert stages == [*first, "connect", "helo", "mail", "rcpt"]


async def test_failure_answers_tempfail_not_dunno(policy, monkeypatch) -> None:
    client, _records = policy

    async def broken(*_args: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("mailmoat.pipeline.Pipeline.run", broken)
    assert (await client.ask(_request())).startswith("451 4.3.0")


def test_config_keys() -> None:
    config = replace(front_config(), policy=PolicyConfig(listen="127.0.0.1:1"))
    assert config.policy.listen == "127.0.0.1:1"
