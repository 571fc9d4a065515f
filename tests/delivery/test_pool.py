"""The upstream pool against a real smtp-sink on loopback."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from mailmoat.config import Config, RelayConfig
from mailmoat.delivery.pool import UpstreamPool
from mailmoat.delivery.upstream import ClientFacts, UpstreamError
from servers import SmtpSink

pytestmark = pytest.mark.integration
CLIENT = ClientFacts("192.0.2.1", "", "client.example")


def _config(upstream: str) -> Config:
    return replace(Config(), relay=RelayConfig(domains=("example.org",), upstream=upstream))


async def test_a_given_back_connection_serves_the_next_client(smtp_sink: SmtpSink) -> None:
    pool = UpstreamPool(_config(smtp_sink.address))
    first, pooled = await pool.take()
    assert not pooled and first.reusable
    await pool.give_back(first)
    assert [session for session, _since in pool.idle] == [first]
    again, pooled = await pool.take()
    assert pooled and again is first
    # Inside a transaction: given back, it is reset (RSET) before it is kept.
    mail, _ = await again.begin("a@sender.example", [], CLIENT)
    assert mail.ok and again.in_transaction
    await pool.give_back(again)
    assert [session for session, _since in pool.idle] == [first] and not first.in_transaction
    await pool.close()
    assert pool.idle == [] and not first.connected


async def test_a_reload_retires_every_older_connection(smtp_sink: SmtpSink) -> None:
    pool = UpstreamPool(_config(smtp_sink.address))
    idle, _ = await pool.take()
    busy, _ = await pool.take()
    await pool.give_back(idle)
    pool.renew(_config(smtp_sink.address))
    assert pool.idle == [] and not pool.is_current(busy)
    await asyncio.sleep(0.2)  # the idle one says QUIT in the background
    assert not idle.connected
    await pool.give_back(busy)  # opened under the old config: quit, not kept
    assert pool.idle == [] and not busy.connected
    fresh, pooled = await pool.take()
    assert not pooled and pool.is_current(fresh)
    await pool.close()


async def test_an_unreachable_upstream_is_a_451_to_give() -> None:
    pool = UpstreamPool(_config("127.0.0.1:9"))
    with pytest.raises(UpstreamError) as raised:
        await pool.take()
    assert raised.value.reply.code == 451
