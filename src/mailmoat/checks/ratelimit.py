"""Rate and concurrency limits per client IP, client network and sender.

Contract: at connect, the connection rate and the number of concurrent
sessions are counted per client IP and per client network (/24, /64);
over a limit, the client gets ``421 4.7.0`` and is disconnected at once.
At MAIL the message rate per client IP and per sender is counted
(``451 4.7.1`` for that MAIL command), at RCPT the recipient rate per client
IP and per sender (``451 4.7.1`` for that recipient). Attempts count even
when refused (a client hammering a limit stays over it). 0 disables a limit;
clients in ``ratelimit.exempt`` (loopback by default, like Postfix's
``smtpd_client_event_limit_exceptions = $mynetworks``) are not counted.

Rates are fixed windows of ``ratelimit.window`` seconds: one store counter
per key and window, with a TTL. A concurrency slot is taken at connect with
an atomic increment of a counter for the current time bucket
(``ratelimit.slot_bucket`` seconds) and given back by the session's cleanup;
the live count is that bucket plus the previous one. Counters carry TTLs of
two buckets, so slots of a process that died without cleaning up vanish by
themselves (at the cost of not counting sessions older than two buckets).

Symbols (score 0, the verdict carries the refusal; reason ``rate_limit``):
``RATELIMIT_CONN_IP``, ``RATELIMIT_CONN_NET``, ``RATELIMIT_CONCURRENT_IP``,
``RATELIMIT_CONCURRENT_NET``, ``RATELIMIT_MSG_IP``, ``RATELIMIT_MSG_SENDER``,
``RATELIMIT_RCPT_IP``, ``RATELIMIT_RCPT_SENDER``. Store errors propagate to
the runner, which applies ``[checks.ratelimit] fail_mode``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import ClassVar

from mailmoat.checks._addr import NetworkSet, client_net
from mailmoat.checks.base import Check, Services
from mailmoat.checks.spec import CheckSpec, SymbolSpec
from mailmoat.config import RatelimitConfig
from mailmoat.core.symbols import Action, Evidence, Forced, Precedence, Stage
from mailmoat.core.transaction import Transaction
from mailmoat.store.base import Store

log = logging.getLogger("mailmoat.checks.ratelimit")

_LIMITS = (
    ("CONN_IP", "connections from the client address (ratelimit.connections_per_ip)"),
    ("CONN_NET", "connections from the client network (ratelimit.connections_per_net)"),
    ("CONCURRENT_IP", "concurrent sessions of the client address (ratelimit.concurrent_per_ip)"),
    ("CONCURRENT_NET", "concurrent sessions of the client network (ratelimit.concurrent_per_net)"),
    ("MSG_IP", "messages from the client address (ratelimit.messages_per_ip)"),
    ("MSG_SENDER", "messages from the envelope sender (ratelimit.messages_per_sender)"),
    ("RCPT_IP", "recipients from the client address (ratelimit.recipients_per_ip)"),
    ("RCPT_SENDER", "recipients from the envelope sender (ratelimit.recipients_per_sender)"),
)
SPEC = CheckSpec(
    name="ratelimit",
    stages=(Stage.CONNECT, Stage.MAIL, Stage.RCPT),
    summary="Rate and concurrency limits per client address, network and sender.",
    # After the lists of the same stage: an allowlisted client is not counted.
    requires=("lists",),
    symbols=tuple(
        SymbolSpec(f"RATELIMIT_{kind}", 0.0, f"Too many {what}: refused for now.", "ratelimit")
        for kind, what in _LIMITS
    ),
)


class _Limiter:
    def __init__(self, store: Store, config: RatelimitConfig, clock: Callable[[], float]) -> None:
        self.store = store
        self.config = config
        self.clock = clock
        self.exempt = NetworkSet(config.exempt)

    def net(self, ip: str) -> str:
        return client_net(ip, self.config.ipv4_prefix, self.config.ipv6_prefix)

    async def over_rate(self, kind: str, who: str, limit: int) -> int:
        """Count one event; the count when it exceeds ``limit``, else 0."""
        if limit <= 0:
            return 0
        window = self.config.window
        index = int(self.clock() // window)
        count = await self.store.incr(f"rl:{kind}:{who}:{index}", 1, 2 * window)
        return count if count > limit else 0


def _refusal(code: int, status: str, text: str, *, immediate: bool) -> Forced:
    return Forced(
        Action.SOFT_REJECT, Precedence.TEST, "rate_limit", code, status, text, immediate=immediate
    )


class ConnectionLimit(Check):
    name: ClassVar[str] = "ratelimit"
    stage: ClassVar[str] = Stage.CONNECT

    def __init__(self, limiter: _Limiter) -> None:
        self.limiter = limiter

    async def run(self, tx: Transaction, evidence: Evidence) -> None:
        lim = self.limiter
        cfg = lim.config
        ip = tx.session.client_ip
        if ip in lim.exempt:
            return
        net = lim.net(ip)
        # Both counters count every attempt, so a refused client still
        # uses up its network's allowance.
        rates = [
            (symbol, who, limit, await lim.over_rate(kind, who, limit))
            for symbol, kind, who, limit in (
                ("RATELIMIT_CONN_IP", "c", ip, cfg.connections_per_ip),
                ("RATELIMIT_CONN_NET", "cn", net, cfg.connections_per_net),
            )
        ]
        for symbol, who, limit, count in rates:
            if count:
                SPEC.add(evidence, symbol, f"{who}: {count} > {limit} per {cfg.window:g}s")
                evidence.force(
                    _refusal(
                        421,
                        "4.7.0",
                        f"Too many connections from {who}, try again later",
                        immediate=True,
                    )
                )
                return
        for symbol, who, limit in (
            ("RATELIMIT_CONCURRENT_IP", ip, cfg.concurrent_per_ip),
            ("RATELIMIT_CONCURRENT_NET", net, cfg.concurrent_per_net),
        ):
            if limit <= 0:
                continue
            count = await self._take_slot(tx, who)
            if count > limit:
                SPEC.add(evidence, symbol, f"{who}: {count} > {limit} sessions")
                evidence.force(
                    _refusal(
                        421,
                        "4.7.0",
                        f"Too many concurrent sessions from {who}, try again later",
                        immediate=True,
                    )
                )
                return

    async def _take_slot(self, tx: Transaction, who: str) -> int:
        """Take a concurrency slot (released at session end); the live count."""
        lim = self.limiter
        bucket_len = lim.config.slot_bucket
        bucket = int(lim.clock() // bucket_len)
        key = f"rl:s:{who}:{bucket}"
        count = await lim.store.incr(key, 1, 2 * bucket_len)
        store = lim.store

        async def release() -> None:
            await store.incr(key, -1, 2 * bucket_len)

        tx.session.cleanups.append(release)
        previous = await store.get(f"rl:s:{who}:{bucket - 1}")
        return count + (max(0, int(previous)) if previous else 0)


class MessageLimit(Check):
    name: ClassVar[str] = "ratelimit"
    stage: ClassVar[str] = Stage.MAIL

    def __init__(self, limiter: _Limiter) -> None:
        self.limiter = limiter

    async def run(self, tx: Transaction, evidence: Evidence) -> None:
        await _count(self.limiter, tx, evidence, "m", "MSG", "messages", immediate=True)


class RecipientLimit(Check):
    name: ClassVar[str] = "ratelimit"
    stage: ClassVar[str] = Stage.RCPT

    def __init__(self, limiter: _Limiter) -> None:
        self.limiter = limiter

    async def run(self, tx: Transaction, evidence: Evidence) -> None:
        await _count(self.limiter, tx, evidence, "r", "RCPT", "recipients", immediate=False)


async def _count(
    lim: _Limiter,
    tx: Transaction,
    evidence: Evidence,
    kind: str,
    label: str,
    noun: str,
    *,
    immediate: bool,
) -> None:
    cfg = lim.config
    ip = tx.session.client_ip
    if ip in lim.exempt:
        return
    per_ip = cfg.messages_per_ip if kind == "m" else cfg.recipients_per_ip
    per_sender = cfg.messages_per_sender if kind == "m" else cfg.recipients_per_sender
    sender = tx.mail_from.lower()
    checks = [(f"RATELIMIT_{label}_IP", f"{kind}i", ip, per_ip)]
    if sender:  # bounces (null sender) come from everywhere: not one sender
        checks.append((f"RATELIMIT_{label}_SENDER", f"{kind}s", sender, per_sender))
    for symbol, key_kind, who, limit in checks:
        count = await lim.over_rate(key_kind, who, limit)
        if count:
            SPEC.add(evidence, symbol, f"{who}: {count} > {limit} per {cfg.window:g}s")
            evidence.force(
                _refusal(
                    451,
                    "4.7.1",
                    f"Too many {noun} from {who}, slow down and try again later",
                    immediate=immediate,
                )
            )
            return


def build(services: Services) -> list[Check]:
    if services.store is None:
        return []
    limiter = _Limiter(services.store, services.config.ratelimit, services.clock)
    return [ConnectionLimit(limiter), MessageLimit(limiter), RecipientLimit(limiter)]
