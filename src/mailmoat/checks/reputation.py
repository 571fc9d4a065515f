"""Source reputation (helo stage): what the client's address, network and AS
sent before, as counted by ``mailmoat.reputation``.

Contract: once per session, reads the decayed counts of the client's
sources from the store (``reputation.counts``; an address, its /24 or /64,
its AS from ``reputation.prefix_table``) and adds ``REPUTATION_BAD_IP``,
``REPUTATION_BAD_NET`` or ``REPUTATION_BAD_AS`` when at least
``reputation.min_messages`` (decayed) messages came from that source and
their quarantined and refused share reaches ``reputation.bad_share``, and
``REPUTATION_GOOD_IP`` (negative) when the address's accepted share reaches
``reputation.good_share``. The detail names the counts. Scores are the
defaults below, changed in ``[scores]``. Our own and allow-listed networks
are never judged. A source's counts are reused for
``reputation.cache_seconds`` (a storm needs no store read per connection).
Once per session: a private flag in ``session.notes`` (``reputation_done``).

Failure mode: a store failure is logged and gives no evidence; no store or
``reputation.enabled = false``: not built. A bad prefix table raises
``TableError`` at build (the start is refused naming file and line).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, ClassVar

from mailmoat.checks.base import Check, Services
from mailmoat.checks.spec import CheckSpec, SymbolSpec
from mailmoat.config import Config
from mailmoat.core.symbols import Evidence, Stage
from mailmoat.core.transaction import Transaction
from mailmoat.reputation.counts import Counts, read_counts
from mailmoat.reputation.recorder import sources_from_config
from mailmoat.reputation.sources import Sources, protected_networks
from mailmoat.store.base import StoreError

log = logging.getLogger("mailmoat.checks.reputation")

SPEC = CheckSpec(
    name="reputation",
    stages=(Stage.HELO,),
    summary="What the client's address, network and AS sent before (decayed counts).",
    # After the HELO list: an allowlisted client is not judged.
    requires=("lists",),
    symbols=(
        SymbolSpec(
            "REPUTATION_BAD_IP",
            3.0,
            "Most recent mail from the client address was quarantined or refused.",
            "reputation",
        ),
        SymbolSpec(
            "REPUTATION_BAD_NET",
            2.0,
            "Most recent mail from the client's /24 (IPv6 /64) was quarantined or refused.",
            "reputation",
        ),
        SymbolSpec(
            "REPUTATION_BAD_AS",
            1.0,
            "Most recent mail from the client's AS was quarantined or refused.",
            "reputation",
        ),
        SymbolSpec(
            "REPUTATION_GOOD_IP",
            -1.0,
            "Nearly all recent mail from the client address was accepted clean.",
            "reputation",
        ),
    ),
)

_DONE = "reputation_done"
_CACHE_MAX = 50_000
_BAD = {"ip": "REPUTATION_BAD_IP", "net": "REPUTATION_BAD_NET", "as": "REPUTATION_BAD_AS"}


def describe(counts: Counts) -> str:
    return (
        f"{counts.bad:.0f} of {counts.total:.0f} quarantined or refused"
        if counts.bad
        else f"{counts.accepted:.0f} of {counts.total:.0f} accepted"
    )


class ReputationCheck(Check):
    name: ClassVar[str] = "reputation"
    stage: ClassVar[str] = Stage.HELO

    def __init__(
        self,
        store: Any,
        config: Config,
        sources: Sources,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.settings = config.reputation
        self.sources = sources
        self.protected = protected_networks(
            self.settings.own_networks, config.lists.allow, config.lists.allow_files
        )
        self.clock = clock
        self._cache: dict[str, tuple[float, Counts]] = {}

    async def run(self, tx: Transaction, evidence: Evidence) -> None:
        session = tx.session
        if session.notes.get(_DONE):
            return
        session.notes[_DONE] = True
        if session.client_ip in self.protected:
            return
        sources = self.sources.of(session.client_ip)
        try:
            counts = await self._counts([s.key for s in sources])
        except StoreError as exc:
            log.warning("reputation: store failed, no evidence: %s", exc)
            return
        settings = self.settings
        for source, found in zip(sources, counts, strict=True):
            if found.total < settings.min_messages:
                continue
            if found.bad_share >= settings.bad_share:
                SPEC.add(evidence, _BAD[source.kind], f"{source.name}: {describe(found)}")
            elif source.kind == "ip" and found.good_share >= settings.good_share:
                SPEC.add(evidence, "REPUTATION_GOOD_IP", f"{source.name}: {describe(found)}")

    async def _counts(self, keys: list[str]) -> list[Counts]:
        now = self.clock()
        cache = self._cache
        hits = {k: hit[1] for k in keys if (hit := cache.get(k)) and hit[0] > now}
        missing = [k for k in keys if k not in hits]
        if missing:
            settings = self.settings
            fresh = await read_counts(
                self.store, missing, now, settings.half_life, settings.retention
            )
            if len(cache) >= _CACHE_MAX:
                cache.clear()
            for key, value in zip(missing, fresh, strict=True):
                hits[key] = value
                if settings.cache_seconds > 0:
                    cache[key] = (now + settings.cache_seconds, value)
        return [hits[k] for k in keys]


def build(services: Services) -> list[Check]:
    config = services.config
    if services.store is None or not config.reputation.enabled:
        return []
    return [ReputationCheck(services.store, config, sources_from_config(config), services.clock)]
