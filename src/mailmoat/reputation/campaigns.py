"""Campaigns: messages whose bulk fingerprints match, followed over time.

Contract: ``CampaignRecorder.observe`` is a verdict observer (end of DATA,
``services.verdict_observers``): it only queues the message's
bulk fingerprint bands (``tx.bulk_fingerprint``, set by the bulk
check), client network, verdict, subject, first URLs and queue id; no I/O.
``flush()`` groups the queue by fingerprint and, per fingerprint, finds its
campaign (``camp:b:<band>`` names the campaign of a band: a message sharing
any band with a campaign joins it; a new fingerprint is named after its
first band). A fingerprint seen once is no campaign: only its first message
("founder", ``camp:f:<id>``) is kept, so unique mail costs two store
operations per flush in all. From the second message on, the campaign's
hash ``camp:c:<id>`` holds its volume ``n`` (the founder included),
verdicts ``v:<action>``, sources ``s:<network>``, ``first`` and ``last``
seen, a sample subject and URLs; its recent queue ids go to the capped list
``camp:q:<id>``; the day's index ``camp:i:<day>`` lists the campaigns.
Every key expires ``reputation.retention`` after its last write.
``read_campaigns``/``read_campaign`` give them back (dicts for pages and
JSON). A store failure keeps the queue for the next flush, bounded.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

from mailmoat.checks.base import Services
from mailmoat.core.scoring import Decision
from mailmoat.core.transaction import Transaction
from mailmoat.reputation.counts import DAY
from mailmoat.reputation.sources import Sources
from mailmoat.store.base import Store

log = logging.getLogger("mailmoat.reputation")

MAX_QUEUE = 50_000
RECENT_IDS = 50
RECENT_PER_FLUSH = 10
SAMPLE_URLS = 5


@dataclass
class Seen:
    bands: tuple[str, ...]
    network: str
    action: str
    subject: str
    urls: list[str]
    queue_id: str
    time: float


class CampaignRecorder:
    def __init__(self, store: Store, sources: Sources, retention: float, protected: Any) -> None:
        self.store = store
        self.sources = sources
        self.retention = retention
        self.protected = protected
        self._queue: list[Seen] = []
        self._lock = asyncio.Lock()
        self.dropped = 0

    def observe(self, services: Services, tx: Transaction, decision: Decision) -> None:
        bands = tx.bulk_fingerprint
        ip = tx.session.client_ip
        if not bands or ip in self.protected:
            return
        if len(self._queue) >= MAX_QUEUE:
            self.dropped += 1
            return
        found = self.sources.of(ip)
        message = tx.message
        self._queue.append(
            Seen(
                bands=bands,
                network=found[1].name if len(found) > 1 else ip,
                action=decision.action.value,
                subject=message.subject[:200],
                urls=list(message.urls[:SAMPLE_URLS]),
                queue_id=tx.queue_id,
                time=services.clock(),
            )
        )

    async def flush(self) -> None:
        async with self._lock:
            queue, self._queue = self._queue, []
            if not queue:
                return
            try:
                await self._write(queue)
            except Exception as exc:
                log.warning("campaigns: flush failed, retrying later: %s", exc)
                self._queue = (queue + self._queue)[:MAX_QUEUE]

    async def _write(self, queue: list[Seen]) -> None:
        """Store costs per flush: one read of every band, one write of the
        new bands (and of each new fingerprint's founder), one batch of
        counters; per campaign that grew: its last time and recent ids."""
        store, ttl = self.store, self.retention
        groups: dict[tuple[str, ...], list[Seen]] = {}
        for seen in queue:
            groups.setdefault(seen.bands, []).append(seen)
        bands = list(dict.fromkeys(b for key in groups for b in key))
        known = {
            band: value.decode()
            for band, value in zip(
                bands, await store.get_many([f"camp:b:{b}" for b in bands]), strict=True
            )
            if value
        }
        new: dict[str, bytes] = {}
        founders: dict[str, Seen] = {}  # campaigns whose first message came in this flush
        joins: dict[str, list[Seen]] = {}
        for key, items in groups.items():
            owner = next((known[b] for b in key if b in known), None)
            if owner is None:
                owner = key[0]
                founders[owner] = items[0]
                items = items[1:]
            for band in key:
                if band not in known:
                    known[band] = owner
                    new[f"camp:b:{band}"] = owner.encode()
            if items:
                joins.setdefault(owner, []).extend(items)
        # A fingerprint seen once is no campaign yet: only its founder is kept.
        for campaign, founder in founders.items():
            if campaign not in joins:
                new[f"camp:f:{campaign}"] = json.dumps(founder.__dict__).encode()
        if new:
            await store.add_many(new, ttl)
        if not joins:
            return
        waiting = [c for c in joins if c not in founders]
        stored = await store.get_many([f"camp:f:{c}" for c in waiting]) if waiting else []
        for campaign, raw in zip(waiting, stored, strict=True):
            if raw:
                try:
                    founders[campaign] = Seen(**json.loads(raw))
                except (ValueError, TypeError):
                    continue
                await store.delete(f"camp:f:{campaign}")
        increments: list[tuple[str, str, float]] = []
        for campaign, joined in joins.items():
            name = f"camp:c:{campaign}"
            first = founders.get(campaign)
            items = joined
            if first is not None:  # the campaign starts now: its first message counts
                items = [first, *joined]
                await store.hset(name, "first", repr(first.time).encode(), ttl)
                await store.hset(name, "subject", first.subject.encode("utf-8", "replace"), ttl)
                await store.hset(name, "urls", json.dumps(first.urls).encode(), ttl)
            counts: dict[str, int] = {"n": len(items)}
            for seen in items:
                counts[f"v:{seen.action}"] = counts.get(f"v:{seen.action}", 0) + 1
                counts[f"s:{seen.network}"] = counts.get(f"s:{seen.network}", 0) + 1
            increments += [(name, field, float(amount)) for field, amount in counts.items()]
            last = max(s.time for s in items)
            increments.append((f"camp:i:{int(last // DAY * DAY)}", campaign, float(len(items))))
            await store.hset(name, "last", repr(last).encode(), ttl)
            for seen in items[-RECENT_PER_FLUSH:]:
                await store.push(f"camp:q:{campaign}", seen.queue_id.encode(), RECENT_IDS, ttl)
        await store.hincr_many(increments, ttl)


def _number(value: bytes | float | None) -> float:
    if value is None:
        return 0.0
    try:
        return float(value)
    except ValueError:
        return 0.0


def summarise(campaign: str, fields: dict[str, bytes | float]) -> dict[str, Any]:
    verdicts = {
        k[2:]: int(v) for k, v in fields.items() if k.startswith("v:") and not isinstance(v, bytes)
    }
    sources = {
        k[2:]: int(v) for k, v in fields.items() if k.startswith("s:") and not isinstance(v, bytes)
    }
    raw_subject = fields.get("subject", b"")
    raw_urls = fields.get("urls", b"[]")
    try:
        urls = json.loads(raw_urls) if isinstance(raw_urls, bytes) else []
    except ValueError:
        urls = []
    spam = sum(n for action, n in verdicts.items() if action != "accept")
    volume = int(_number(fields.get("n")))
    return {
        "id": campaign,
        "volume": volume,
        "first": _number(fields.get("first")),
        "last": _number(fields.get("last")),
        "sources": dict(sorted(sources.items(), key=lambda kv: -kv[1])),
        "source_count": len(sources),
        "verdicts": dict(sorted(verdicts.items())),
        "spam_share": round(spam / volume, 3) if volume else 0.0,
        "subject": raw_subject.decode("utf-8", "replace") if isinstance(raw_subject, bytes) else "",
        "urls": [str(u) for u in urls][:SAMPLE_URLS],
    }


SORTS = ("volume", "last", "first", "source_count", "spam_share")


async def read_campaigns(
    store: Store,
    now: float,
    days: int = 7,
    *,
    sort: str = "volume",
    min_volume: int = 2,
    limit: int = 100,
) -> list[dict[str, Any]]:
    ids: set[str] = set()
    day = int(now // DAY * DAY)
    for _ in range(days + 1):
        ids.update((await store.hgetall(f"camp:i:{day}")).keys())
        day -= DAY
    found = []
    for campaign in ids:
        fields = await store.hgetall(f"camp:c:{campaign}")
        if fields:
            item = summarise(campaign, fields)
            if item["volume"] >= min_volume:
                found.append(item)
    key = sort if sort in SORTS else "volume"
    found.sort(key=lambda c: (c[key], c["volume"]), reverse=True)
    return found[:limit]


async def read_campaign(store: Store, campaign: str) -> dict[str, Any] | None:
    fields = await store.hgetall(f"camp:c:{campaign}")
    if not fields:
        return None
    item = summarise(campaign, fields)
    item["queue_ids"] = [
        q.decode("utf-8", "replace") for q in await store.range(f"camp:q:{campaign}", 0, -1)
    ]
    return item
