"""Recording outcomes per source: cheap in the hot path, batched to the store.

Contract: a ``ReputationRecorder`` is a ``Pipeline`` recorder. Called with a
finished transaction's ``TransactionRecord`` it only adds to in-memory
counters (no I/O, no await): one per source (address, network, AS) and
outcome (``counts.outcome_of``), nothing for our own and allow-listed
networks or for outcomes that are not evidence. ``flush()`` writes what
accumulated with one ``hincr`` per source, outcome and hour plus one per
source into the day's index (a storm from one source costs a few writes per
flush, not per message); ``start()`` flushes every
``reputation.flush_interval`` seconds, ``stop()`` a last time. A store
failure keeps the increments for the next flush (logged, never raised into
the gateway). ``install(services)`` makes the recorder, which the runtime
attaches to the pipeline, starts and stops (as it does statistics), and
registers the campaign recorder (``reputation.campaigns``) as a verdict
observer, flushed with it. The time of each network's and AS's last bad message goes
to its hash as ``lb`` (for "went dark" events).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable

from mailmoat.checks.base import Services
from mailmoat.config import Config
from mailmoat.core.record import TransactionRecord
from mailmoat.core.tasks import FlushLoop
from mailmoat.reputation.campaigns import CampaignRecorder
from mailmoat.reputation.counts import DAY, HOUR, index_key, outcome_of, source_key
from mailmoat.reputation.sources import PrefixTable, Sources, protected_networks
from mailmoat.store.base import Store

log = logging.getLogger("mailmoat.reputation")

# Pending increments beyond this (a store down for long) are dropped, counted.
MAX_PENDING = 200_000
# Increments per store transaction (one SQLite transaction, one Redis MULTI).
FLUSH_BATCH = 2000


def sources_from_config(config: Config) -> Sources:
    """The configured ``Sources`` (raises ``TableError`` for a bad table)."""
    settings = config.reputation
    table = PrefixTable.load(settings.prefix_table) if settings.prefix_table else None
    return Sources(table, settings.ipv4_prefix, settings.ipv6_prefix)


class ReputationRecorder(FlushLoop):
    def __init__(self, store: Store, config: Config, sources: Sources | None = None) -> None:
        self.store = store
        self.settings = config.reputation
        self.sources = sources or sources_from_config(config)
        self.protected = protected_networks(
            self.settings.own_networks, config.lists.allow, config.lists.allow_files
        )
        self._pending: Counter[tuple[str, str]] = Counter()
        self._index: Counter[tuple[int, str]] = Counter()
        # Source key -> time of its last quarantined or refused message.
        self._last_bad: dict[str, float] = {}
        self._lock = asyncio.Lock()
        self.dropped = 0
        # Flushed with the counts (the campaigns).
        self.companions: list[Callable[[], Awaitable[None]]] = []

    # -- hot path (no I/O) --------------------------------------------------

    def __call__(self, record: TransactionRecord) -> None:
        letter = outcome_of(record)
        if letter is None or record.client_ip in self.protected:
            return
        sources = self.sources.of(record.client_ip)
        if not sources:
            return
        if len(self._pending) >= MAX_PENDING:
            self.dropped += 1
            return
        field = f"{letter}:{int(record.time // HOUR)}"
        day = int(record.time // DAY * DAY)
        pending, index = self._pending, self._index
        bad = letter in "qr"
        for source in sources:
            key = source.key
            pending[key, field] += 1
            index[day, key] += 1
            if bad and source.kind != "ip":
                self._last_bad[key] = max(self._last_bad.get(key, 0.0), record.time)

    # -- flushing -----------------------------------------------------------

    async def flush(self) -> None:
        for companion in self.companions:
            try:
                await companion()
            except Exception:
                log.exception("reputation: flush of %r failed", companion)
        async with self._lock:
            pending, self._pending = self._pending, Counter()
            index, self._index = self._index, Counter()
            last_bad, self._last_bad = self._last_bad, {}
            ttl = self.settings.retention
            ops = [(source_key(key), field, float(n)) for (key, field), n in pending.items()]
            ops += [(index_key(day), key, float(n)) for (day, key), n in index.items()]
            done = 0  # increments written
            try:
                while done < len(ops):
                    await self.store.hincr_many(ops[done : done + FLUSH_BATCH], ttl)
                    done += FLUSH_BATCH
                for key, when in last_bad.items():
                    await self.store.hset(source_key(key), "lb", repr(when).encode(), ttl)
            except Exception as exc:
                log.warning("reputation: flush failed, retrying later: %s", exc)
                self._keep(ops[done:])
                for key, when in last_bad.items():
                    self._last_bad[key] = max(self._last_bad.get(key, 0.0), when)

    def _keep(self, ops: list[tuple[str, str, float]]) -> None:
        for key, field, amount in ops:
            if key.startswith("rep:s:"):
                self._pending[key.removeprefix("rep:s:"), field] += int(amount)
            else:
                self._index[int(key.rpartition(":")[2]), field] += int(amount)

    # -- lifecycle ----------------------------------------------------------

    def flush_interval(self) -> float:
        return self.settings.flush_interval


def install(services: Services) -> ReputationRecorder | None:
    """The recorder for ``services`` (None when off or without a store), its
    campaign recorder flushed with it and observing end-of-DATA verdicts.
    The runtime attaches it to the pipeline, starts and stops it."""
    config = services.config
    if services.store is None or not config.reputation.enabled:
        return None
    recorder = ReputationRecorder(services.store, config)
    campaigns = CampaignRecorder(
        services.store, recorder.sources, config.reputation.retention, recorder.protected
    )
    recorder.companions.append(campaigns.flush)
    services.verdict_observers.append(campaigns.observe)
    return recorder
