"""Greylisting (rcpt stage), postgrey-style.

Contract: a recipient is deferred with ``451 4.7.1`` the first time a
triplet (client network: /24 or /64, sender, recipient) is seen, and while
it is younger than ``greylist.delay`` seconds. A retry after the delay and
within ``greylist.retry_window`` passes; the passed triplet is remembered
for ``greylist.max_age`` seconds (refreshed on each use), a retry after the
window starts over. After ``greylist.auto_allowlist`` successful retries a
client network is exempt altogether (also for ``max_age``).

Who is greylisted: in mode ``"score"`` only clients whose score at RCPT is
in the greylisting band (``actions.greylist <= score < actions.reject``);
in mode ``"all"`` every client not known yet. Never allowlisted clients (the
pipeline skips this check for them) nor DNSWL-listed ones (see dnsbl).

State lives in the store under ``gl:`` keys, each with a TTL, changed only
with atomic ``add``/``compare_and_set``; the delay and the window are
computed from timestamps read from ``services.clock``, never from key
expiry, so tests can move time and two gateways sharing a store agree.
Symbols (score 0, the verdict carries the refusal): ``GREYLIST_DEFERRED``
(detail: new / too early / window expired), ``GREYLIST_PASSED``,
``GREYLIST_AUTO_ALLOWLIST``. Store errors propagate: the runner applies the
check's fail mode (``[checks.greylist] fail_mode``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import ClassVar

from mailmoat.checks._addr import client_net
from mailmoat.checks.base import Check, Services
from mailmoat.checks.spec import CheckSpec, SymbolSpec
from mailmoat.config import ActionsConfig, GreylistConfig
from mailmoat.core.symbols import Action, Evidence, Forced, Precedence, Stage
from mailmoat.core.transaction import Transaction
from mailmoat.store.base import Store

SPEC = CheckSpec(
    name="greylist",
    stages=(Stage.RCPT,),
    summary="Greylisting of new (network, sender, recipient) triplets.",
    # Reads the allow and deny verdicts and the DNSWL listing (session.dnswl).
    requires=("lists", "dnsbl"),
    symbols=(
        SymbolSpec(
            "GREYLIST_DEFERRED",
            0.0,
            "The triplet was not seen before (or too recently): temporarily refused.",
            "greylist",
        ),
        SymbolSpec(
            "GREYLIST_PASSED", 0.0, "The sender retried after the delay: accepted.", "greylist"
        ),
        SymbolSpec(
            "GREYLIST_AUTO_ALLOWLIST",
            0.0,
            "The client network retried often enough to be exempt from greylisting.",
            "greylist",
        ),
    ),
)

_WAIT = "wait"
_PASS = "pass"


def _encode(first: float, state: str) -> bytes:
    return f"{first:.3f}|{state}".encode()


def _decode(value: bytes) -> tuple[float, str]:
    first, _, state = value.decode("ascii", "replace").partition("|")
    try:
        return float(first), state
    except ValueError:
        return 0.0, ""


class GreylistCheck(Check):
    name: ClassVar[str] = "greylist"
    stage: ClassVar[str] = Stage.RCPT

    def __init__(
        self,
        store: Store,
        config: GreylistConfig,
        actions: ActionsConfig,
        clock: Callable[[], float],
    ) -> None:
        self.store = store
        self.config = config
        self.actions = actions
        self.clock = clock

    def applies(self, tx: Transaction) -> bool:
        if tx.session.dnswl or tx.allowlisted:
            return False
        # A client refused anyway (DNSBL, deny list) leaves no triplet behind.
        if any(f.action is Action.REJECT for f in tx.all_forced):
            return False
        if self.config.mode == "all":
            return True
        low, high = self.actions.greylist, self.actions.reject
        score = tx.score
        return low > 0 and score >= low and (high <= 0 or score < high)

    async def run(self, tx: Transaction, evidence: Evidence) -> None:
        if not self.applies(tx):
            return
        store = self.store
        net = client_net(tx.session.client_ip, self.config.ipv4_prefix, self.config.ipv6_prefix)
        exempt_key = f"gl:a:{net}"
        if await store.get(exempt_key) is not None:
            SPEC.add(evidence, "GREYLIST_AUTO_ALLOWLIST", net)
            return
        sender = tx.mail_from.lower() or "<>"
        key = f"gl:t:{net}|{sender}|{tx.current_rcpt.lower()}"
        for _attempt in range(5):
            outcome = await self._step(key, net)
            if outcome is None:
                continue  # lost a race with a concurrent session: read again
            verdict, detail, wait = outcome
            if verdict == _PASS:
                SPEC.add(evidence, "GREYLIST_PASSED", detail)
                return
            SPEC.add(evidence, "GREYLIST_DEFERRED", f"{detail}; {net}")
            evidence.force(
                Forced(
                    Action.SOFT_REJECT,
                    Precedence.TEST,
                    "greylist",
                    451,
                    "4.7.1",
                    f"Greylisted: please try again in {math.ceil(wait)} seconds",
                )
            )
            return
        raise RuntimeError(f"greylist key {key} kept changing under us")

    async def _step(self, key: str, net: str) -> tuple[str, str, float] | None:
        """One read-modify-write round; None when a concurrent writer won."""
        store = self.store
        cfg = self.config
        now = self.clock()
        current: bytes | None = await store.get(key)
        if current is None:
            if not await store.add(key, _encode(now, _WAIT), cfg.retry_window):
                return None
            return _WAIT, "new triplet", cfg.delay
        first, state = _decode(current)
        age = now - first
        if state == _PASS:
            # Refresh: a triplet in use stays known for max_age from its last use.
            await store.compare_and_set(key, current, current, cfg.max_age)
            return _PASS, "known triplet", 0.0
        if age < cfg.delay:
            return _WAIT, "too early", cfg.delay - age
        if age > cfg.retry_window:
            renewed = _encode(now, _WAIT)
            if not await store.compare_and_set(key, current, renewed, cfg.retry_window):
                return None
            return _WAIT, "retry window expired", cfg.delay
        if not await store.compare_and_set(key, current, _encode(first, _PASS), cfg.max_age):
            return None
        await self._count_pass(net)
        return _PASS, f"retried after {age:.0f}s", 0.0

    async def _count_pass(self, net: str) -> None:
        if self.config.auto_allowlist <= 0:
            return
        store = self.store
        passes = await store.incr(f"gl:n:{net}", 1, self.config.max_age)
        if passes >= self.config.auto_allowlist:
            await store.set(f"gl:a:{net}", b"1", self.config.max_age)


def build(services: Services) -> list[Check]:
    config = services.config.greylist
    if not config.enabled or services.store is None:
        return []
    return [GreylistCheck(services.store, config, services.config.actions, services.clock)]
