"""The statistics recorder: cheap in the hot path, batched to the store.

Contract: a ``StatsRecorder`` is a ``Pipeline`` recorder. Calling it with a
``TransactionRecord`` only updates in-memory counters and queues the history
entry (no I/O, no await); ``count_connection()`` likewise. ``flush()`` writes
what accumulated since the last flush with ``Store.hincr`` (minute, hour,
day and all-time hashes, per-day top lists; the process's
``mailmoat.metrics`` into the all-time hash) and one ``push`` per history
hour; ``start()`` flushes every ``stats.flush_interval`` seconds and
``stop()`` flushes a last time, so a clean shutdown loses nothing. A store
failure keeps the unwritten increments for the next flush (logged, never
raised into the gateway); history over ``stats.history_max_per_hour`` per
hour is dropped and counted (``history_dropped``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import ipaddress
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

from mailmoat.config import StatsConfig
from mailmoat.core.record import TransactionRecord
from mailmoat.core.tasks import FlushLoop
from mailmoat.metrics import METRICS
from mailmoat.stats.counters import (
    DAY,
    HOUR,
    MINUTE,
    NODES_KEY,
    bucket_key,
    fields_for,
    floor,
    total_key,
)
from mailmoat.stats.history import write_batch
from mailmoat.stats.series import top_key
from mailmoat.store.base import Store

log = logging.getLogger("mailmoat.stats")

# Per flush and top-list kind, values beyond the busiest ones are summed
# into "(other)" so a storm of distinct addresses costs a bounded write.
TOP_VALUES_PER_FLUSH = 1000
OTHER = "(other)"

Op = tuple[str, str, float, float]


@functools.lru_cache(maxsize=65_536)
def net_of(address: str) -> str:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address or "unknown"
    prefix = 24 if ip.version == 4 else 64
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower() if "@" in address else "<>"


def entry_of(record: TransactionRecord, node: str) -> dict[str, Any]:
    """The history entry of a record: ``TransactionRecord.as_dict()`` minus
    the deep copy (``dataclasses.asdict`` costs ~100 us a record)."""
    entry: dict[str, Any] = {
        name: getattr(record, name) for name in _RECORD_FIELDS if name not in ("symbols", "rcpts")
    }
    entry["rcpts"] = list(record.rcpts)
    entry["symbols"] = {s.name: s.score for s in record.symbols}
    details = {s.name: s.detail for s in record.symbols if s.detail}
    if details:
        entry["symbol_details"] = details
    entry["node"] = node
    return entry


_RECORD_FIELDS = tuple(f.name for f in dataclasses.fields(TransactionRecord))


class StatsRecorder(FlushLoop):
    def __init__(
        self,
        store: Store,
        settings: StatsConfig,
        node: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.settings = settings
        self.node = node
        self.clock = clock
        self._minutes: defaultdict[int, Counter[str]] = defaultdict(Counter)
        self._tops: defaultdict[tuple[str, int], Counter[str]] = defaultdict(Counter)
        self._history: defaultdict[int, list[TransactionRecord]] = defaultdict(list)
        self._per_hour: Counter[int] = Counter()
        self._retry_ops: list[Op] = []
        self._retry_history: list[tuple[int, list[dict[str, Any]]]] = []
        self._lock = asyncio.Lock()
        self.flushes = 0

    # -- hot path (no I/O) --------------------------------------------------

    def __call__(self, record: TransactionRecord) -> None:
        now = record.time
        minute = self._minutes[floor(now, MINUTE)]
        for name in fields_for(record):
            minute[name] += 1
        day = floor(now, DAY)
        tops = self._tops
        tops["ip", day][record.client_ip] += 1
        tops["net24", day][net_of(record.client_ip)] += 1
        tops["sender_domain", day][domain_of(record.mail_from)] += 1
        for rcpt in record.rcpts:
            tops["rcpt", day][rcpt.lower()] += 1
        hour = floor(now, HOUR)
        if self._per_hour[hour] >= self.settings.history_max_per_hour:
            minute["history_dropped"] += 1
            return
        self._per_hour[hour] += 1
        # Converted to JSON at flush time, off the transaction's path.
        self._history[hour].append(record)

    def count_connection(self) -> None:
        self._minutes[floor(self.clock(), MINUTE)]["connections"] += 1

    def count(self, name: str, amount: int = 1) -> None:
        self._minutes[floor(self.clock(), MINUTE)][name] += amount

    @property
    def pending(self) -> int:
        return sum(sum(c.values()) for c in self._minutes.values()) + len(self._retry_ops)

    # -- flushing -----------------------------------------------------------

    async def flush(self) -> None:
        async with self._lock:
            ops = self._retry_ops + self._take_ops()
            batches = self._retry_history + [
                (hour, [entry_of(r, self.node) for r in records])
                for hour, records in sorted(self._history.items())
            ]
            self._retry_ops, self._retry_history = [], []
            self._history = defaultdict(list)
            self._prune_hour_caps()
            if ops or batches:
                nodes_ttl = self.settings.day_retention_days * DAY
                with contextlib.suppress(Exception):
                    await self.store.hset(
                        NODES_KEY, self.node, str(self.clock()).encode(), nodes_ttl
                    )
            for index, (key, name, amount, ttl) in enumerate(ops):
                try:
                    await self.store.hincr(key, name, amount, ttl)
                except Exception as exc:
                    log.warning("stats: flush failed, retrying later: %s", exc)
                    self._retry_ops = ops[index:]
                    self._retry_history = batches
                    return
            history_ttl = self.settings.history_days * DAY
            for index, (hour, entries) in enumerate(batches):
                try:
                    await write_batch(self.store, self.node, hour, entries, history_ttl)
                except Exception as exc:
                    log.warning("stats: history flush failed, retrying later: %s", exc)
                    self._retry_history = batches[index:]
                    return
            self.flushes += 1

    def _take_ops(self) -> list[Op]:
        minutes, self._minutes = self._minutes, defaultdict(Counter)
        tops, self._tops = self._tops, defaultdict(Counter)
        s = self.settings
        ttls = {
            "m": s.minute_retention_hours * HOUR,
            "h": s.hour_retention_days * DAY,
            "d": s.day_retention_days * DAY,
        }
        merged: defaultdict[tuple[str, int], Counter[str]] = defaultdict(Counter)
        for start, counts in minutes.items():
            for resolution, size in (("m", MINUTE), ("h", HOUR), ("d", DAY)):
                key = bucket_key(resolution, self.node, floor(start, size))
                merged[key, ttls[resolution]].update(counts)
            merged[total_key(self.node), ttls["d"]].update(counts)
        ops: list[Op] = [
            (key, name, float(amount), ttl)
            for (key, ttl), counts in merged.items()
            for name, amount in counts.items()
        ]
        # Latency histograms and error counters (``mailmoat.metrics``): all-time only.
        total = total_key(self.node)
        ops += [(total, name, amount, ttls["d"]) for name, amount in METRICS.take().items()]
        top_ttl = s.hour_retention_days * DAY
        for (kind, day), counts in tops.items():
            busiest = counts.most_common(TOP_VALUES_PER_FLUSH)
            rest = sum(counts.values()) - sum(c for _, c in busiest)
            if rest:
                busiest.append((OTHER, rest))
            key = top_key(kind, self.node, day)
            ops += [(key, value, float(count), top_ttl) for value, count in busiest]
        return ops

    def _prune_hour_caps(self) -> None:
        current = floor(self.clock(), HOUR)
        for hour in [h for h in self._per_hour if h < current - HOUR]:
            del self._per_hour[hour]

    # -- lifecycle ----------------------------------------------------------

    def flush_interval(self) -> float:
        return self.settings.flush_interval
