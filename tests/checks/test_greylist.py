"""Greylisting on a fake clock: the delay, the window, auto-allowlisting, modes."""

from __future__ import annotations

import pytest

from fakes import FakeClock, make_config, make_services, new_tx, pipeline_of
from mailmoat.checks.base import Services
from mailmoat.config import ActionsConfig, GreylistConfig
from mailmoat.core.scoring import Decision
from mailmoat.core.symbols import Action, Stage

ALL = GreylistConfig(mode="all", delay=300, retry_window=2 * 86400, max_age=35 * 86400)


def setup(
    config: GreylistConfig = ALL, actions: ActionsConfig | None = None
) -> tuple[Services, FakeClock]:
    clock = FakeClock()
    services = make_services(
        make_config(greylist=config, actions=actions or ActionsConfig()), clock=clock
    )
    return services, clock


async def attempt(
    services: Services,
    ip: str = "192.0.2.10",
    sender: str = "a@sender.example",
    rcpt: str = "b@localhost",
    score: float = 0.0,
    dnswl: bool = False,
) -> Decision:
    pipeline = pipeline_of(services, "mailmoat.checks.greylist")
    tx = new_tx(ip, sender=sender)
    if score:
        tx.session.symbols.append(pipeline.rescored("TEST_SCORE", score))
    if dnswl:
        tx.session.dnswl = True
    tx.current_rcpt = rcpt
    return await pipeline.run(Stage.RCPT, tx)


async def test_cycle_defer_too_early_pass_known() -> None:
    services, clock = setup()
    first = await attempt(services)
    assert first.action is Action.SOFT_REJECT and first.reason == "greylist"
    assert first.reply() == "451 4.7.1 Greylisted: please try again in 300 seconds"
    clock.advance(120)
    early = await attempt(services)
    assert early.action is Action.SOFT_REJECT and "180 seconds" in early.text
    clock.advance(181)
    assert (await attempt(services)).action is Action.ACCEPT
    clock.advance(20 * 86400)  # known triplets stay known (max_age from last use)
    assert (await attempt(services)).action is Action.ACCEPT


async def test_triplet_parts_each_matter_but_the_network_is_shared() -> None:
    services, clock = setup()
    await attempt(services)
    clock.advance(301)
    assert (await attempt(services, ip="192.0.2.99")).action is Action.ACCEPT  # same /24
    assert (await attempt(services, ip="192.0.3.10")).action is Action.SOFT_REJECT
    assert (await attempt(services, sender="c@sender.example")).action is Action.SOFT_REJECT
    assert (await attempt(services, rcpt="other@localhost")).action is Action.SOFT_REJECT


async def test_retry_after_window_starts_over() -> None:
    services, clock = setup()
    await attempt(services)
    clock.advance(2 * 86400 + 1)
    late = await attempt(services)
    assert late.action is Action.SOFT_REJECT and "300 seconds" in late.text
    clock.advance(301)
    assert (await attempt(services)).action is Action.ACCEPT


async def test_ipv6_uses_a_64() -> None:
    services, clock = setup()
    await attempt(services, ip="2001:db8:1:2::5")
    clock.advance(301)
    assert (await attempt(services, ip="2001:db8:1:2::ffff")).action is Action.ACCEPT
    assert (await attempt(services, ip="2001:db8:1:3::5")).action is Action.SOFT_REJECT


async def test_auto_allowlist_after_five_retries() -> None:
    services, clock = setup()
    for n in range(5):
        rcpt = f"user{n}@localhost"
        assert (await attempt(services, rcpt=rcpt)).action is Action.SOFT_REJECT
        clock.advance(301)
        assert (await attempt(services, rcpt=rcpt)).action is Action.ACCEPT
    pipeline = pipeline_of(services, "mailmoat.checks.greylist")
    tx = new_tx("192.0.2.77", sender="new@elsewhere.example")
    tx.current_rcpt = "never-seen@localhost"
    assert (await pipeline.run(Stage.RCPT, tx)).action is Action.ACCEPT
    assert [s.name for s in tx.symbols] == ["GREYLIST_AUTO_ALLOWLIST"]


async def test_four_retries_are_not_enough() -> None:
    services, clock = setup()
    for n in range(4):
        await attempt(services, rcpt=f"user{n}@localhost")
        clock.advance(301)
        await attempt(services, rcpt=f"user{n}@localhost")
    assert (await attempt(services, rcpt="fresh@localhost")).action is Action.SOFT_REJECT


@pytest.mark.parametrize(
    ("score", "greylisted"),
    [(0.0, False), (2.9, False), (3.0, True), (8.0, True), (10.0, False)],
)
async def test_score_mode_greylists_only_the_greylisting_band(
    score: float, greylisted: bool
) -> None:
    services, _ = setup(GreylistConfig(mode="score"), ActionsConfig(greylist=3.0, reject=10.0))
    decision = await attempt(services, score=score)
    assert (decision.reason == "greylist") is greylisted
    if score >= 10:
        assert decision.action is Action.REJECT and decision.reason == "score"


async def test_score_mode_without_band_never_greylists() -> None:
    services, _ = setup(GreylistConfig(mode="score"), ActionsConfig(greylist=0.0))
    assert (await attempt(services, score=5.0)).action is Action.ACCEPT


async def test_score_mode_default_band_starts_at_two() -> None:
    services, _ = setup(GreylistConfig(mode="score"))  # embedded [actions] greylist = 2
    assert (await attempt(services, score=1.9)).action is Action.ACCEPT
    assert (await attempt(services, score=2.0, rcpt="other@localhost")).reason == "greylist"


async def test_dnswl_clients_are_never_greylisted() -> None:
    services, _ = setup()
    assert (await attempt(services, dnswl=True)).action is Action.ACCEPT


def test_disabled() -> None:
    services, _ = setup(GreylistConfig(enabled=False))
    assert pipeline_of(services, "mailmoat.checks.greylist").checks == []
