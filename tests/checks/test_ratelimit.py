"""Rate and concurrency limits on a fake clock and an in-memory store."""

from __future__ import annotations

from fakes import (
    RATELIMITS_OFF,
    FakeClock,
    end_session,
    make_config,
    make_services,
    new_tx,
    pipeline_of,
)
from mailmoat.checks.base import Services
from mailmoat.config import RatelimitConfig
from mailmoat.core.scoring import Decision
from mailmoat.core.symbols import Action, Stage
from mailmoat.core.transaction import Transaction


def setup(**limits: object) -> tuple[Services, FakeClock]:
    clock = FakeClock()
    config = RatelimitConfig(**{**RATELIMITS_OFF, **limits})  # type: ignore[arg-type]
    return make_services(make_config(ratelimit=config), clock=clock), clock


async def connect(services: Services, ip: str) -> tuple[Transaction, Decision]:
    tx = new_tx(ip)
    return tx, await pipeline_of(services, "mailmoat.checks.ratelimit").run(Stage.CONNECT, tx)


async def test_connection_rate_per_ip() -> None:
    services, clock = setup(connections_per_ip=3)
    for _ in range(3):
        assert (await connect(services, "192.0.2.1"))[1].action is Action.ACCEPT
    tx, refused = await connect(services, "192.0.2.1")
    assert refused.reply() == "421 4.7.0 Too many connections from 192.0.2.1, try again later"
    assert refused.reason == "rate_limit"
    assert [s.name for s in tx.session.symbols] == ["RATELIMIT_CONN_IP"]
    assert (await connect(services, "192.0.2.2"))[1].action is Action.ACCEPT
    clock.advance(60)
    assert (await connect(services, "192.0.2.1"))[1].action is Action.ACCEPT


async def test_connection_rate_per_net() -> None:
    services, _ = setup(connections_per_net=4)
    for n in range(4):
        assert (await connect(services, f"192.0.2.{n}"))[1].action is Action.ACCEPT
    refused = (await connect(services, "192.0.2.200"))[1]
    assert "192.0.2.0/24" in refused.text and refused.code == 421
    assert (await connect(services, "192.0.3.1"))[1].action is Action.ACCEPT


async def test_concurrency_slots_are_released_at_session_end() -> None:
    services, _ = setup(concurrent_per_ip=2)
    first, _ = await connect(services, "192.0.2.1")
    second, _ = await connect(services, "192.0.2.1")
    third, refused = await connect(services, "192.0.2.1")
    assert refused.code == 421 and "concurrent" in refused.text
    await end_session(third)
    still, refused = await connect(services, "192.0.2.1")
    assert refused.code == 421
    await end_session(still)
    await end_session(first)
    fourth, again = await connect(services, "192.0.2.1")
    assert again.action is Action.ACCEPT
    for tx in (second, fourth):
        await end_session(tx)
    assert await services.store.get(next(k for k in await _slot_keys(services))) == b"0"


async def _slot_keys(services: Services) -> list[str]:
    rows = services.store._db.execute("SELECT key FROM kv WHERE key LIKE 'rl:s:%'").fetchall()
    return [r[0] for r in rows]


async def test_concurrency_per_net_and_crossing_a_bucket() -> None:
    services, clock = setup(concurrent_per_net=2, slot_bucket=600)
    a, _ = await connect(services, "192.0.2.1")
    clock.advance(600)  # next bucket: the earlier session still counts
    b, _ = await connect(services, "192.0.2.2")
    c, refused = await connect(services, "192.0.2.3")
    assert refused.code == 421
    await end_session(c)
    await end_session(a)  # released in its own bucket
    assert (await connect(services, "192.0.2.4"))[1].action is Action.ACCEPT
    await end_session(b)


async def test_leaked_slots_expire() -> None:
    services, clock = setup(concurrent_per_ip=1, slot_bucket=600)
    await connect(services, "192.0.2.1")  # the process "dies": no cleanup
    assert (await connect(services, "192.0.2.1"))[1].code == 421
    clock.advance(1200)
    assert (await connect(services, "192.0.2.1"))[1].action is Action.ACCEPT


async def mail(services: Services, ip: str, sender: str, rcpts: int = 1) -> list[Decision]:
    pipeline = pipeline_of(services, "mailmoat.checks.ratelimit")
    tx = new_tx(ip, sender=sender)
    decisions = [await pipeline.run(Stage.MAIL, tx)]
    for n in range(rcpts):
        tx.current_rcpt = f"r{n}@localhost"
        decisions.append(await pipeline.run(Stage.RCPT, tx))
    return decisions


async def test_messages_per_ip_refused_at_mail() -> None:
    services, clock = setup(messages_per_ip=2)
    for _ in range(2):
        assert (await mail(services, "192.0.2.1", "a@x.example"))[0].action is Action.ACCEPT
    refused = (await mail(services, "192.0.2.1", "b@x.example"))[0]
    assert refused.reply().startswith("451 4.7.1 Too many messages from 192.0.2.1")
    clock.advance(60)
    assert (await mail(services, "192.0.2.1", "a@x.example"))[0].action is Action.ACCEPT


async def test_messages_per_sender_across_clients() -> None:
    services, _ = setup(messages_per_sender=2)
    await mail(services, "192.0.2.1", "Bulk@x.example")
    await mail(services, "198.51.100.1", "bulk@x.example")
    refused = (await mail(services, "203.0.113.1", "bulk@x.example"))[0]
    assert refused.code == 451 and "bulk@x.example" in refused.text
    for _ in range(3):  # the null sender is nobody in particular
        assert (await mail(services, "203.0.113.1", ""))[0].action is Action.ACCEPT


async def test_recipients_per_ip_refused_per_recipient() -> None:
    services, _ = setup(recipients_per_ip=3)
    decisions = await mail(services, "192.0.2.1", "a@x.example", rcpts=5)
    assert [d.code for d in decisions[1:]] == [250, 250, 250, 451, 451]
    assert "recipients" in decisions[-1].text


async def test_recipients_per_sender() -> None:
    services, _ = setup(recipients_per_sender=2)
    decisions = await mail(services, "192.0.2.1", "a@x.example", rcpts=3)
    assert [d.code for d in decisions[1:]] == [250, 250, 451]


async def test_exempt_networks_are_not_counted() -> None:
    services, _ = setup(connections_per_ip=1, exempt=("192.0.2.0/24",))
    for _ in range(5):
        assert (await connect(services, "192.0.2.1"))[1].action is Action.ACCEPT
    assert await _slot_keys(services) == []
