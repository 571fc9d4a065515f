"""Reverse DNS of the client (connect -> helo).

Contract: the PTR lookup and the forward confirmation (A/AAAA of each PTR
name, at most three) start at connect and run in the background; at the
helo stage the result becomes evidence and ``session.client_rdns`` is
filled (the confirmed name if there is one, else the first PTR name).

Symbols: ``RDNS_NONE`` (no PTR record: NXDOMAIN or no data),
``RDNS_NOT_CONFIRMED`` (no PTR name resolves back to the client address,
Postfix's "unknown"), ``RDNS_DYNAMIC`` (the name looks like an access
network host: the client's octets embedded, or labels like dsl, dhcp, dyn,
pool, ppp, cable; extra patterns in ``rdns.dynamic_patterns``).
Failure mode: a timeout or SERVFAIL is no evidence, only ``RDNS_UNAVAILABLE``
(score 0). Clients in ``rdns.skip_networks`` (loopback by default) are not
looked up at all. The lookup's task and a done flag are this check's
private memo in ``session.notes`` (``rdns_task``, ``rdns_done``); what
others read is ``session.client_rdns``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
from dataclasses import dataclass
from typing import ClassVar

from mailmoat import eager
from mailmoat.checks._addr import NetworkSet
from mailmoat.checks.base import Check, Services, start_session_task
from mailmoat.checks.spec import CheckSpec, SymbolSpec
from mailmoat.core.symbols import Evidence, Stage
from mailmoat.core.transaction import Session, Transaction
from mailmoat.dns import Resolver, reverse_name

SPEC = CheckSpec(
    name="rdns",
    stages=(Stage.CONNECT, Stage.HELO),
    summary="Reverse DNS of the client address and its forward confirmation.",
    # After the lists of the same stage: no queries for an allowlisted client.
    requires=("lists",),
    symbols=tuple(
        SymbolSpec(name, score, text, "reputation")
        for name, score, text in (
            ("RDNS_NONE", 1.5, "The client address has no reverse DNS (PTR) name."),
            (
                "RDNS_NOT_CONFIRMED",
                1.0,
                "No reverse DNS name of the client resolves back to its address.",
            ),
            (
                "RDNS_DYNAMIC",
                1.5,
                "The client's reverse DNS name looks like a dynamic access-network host.",
            ),
            ("RDNS_UNAVAILABLE", 0.0, "A reverse DNS lookup failed or timed out: no evidence."),
        )
    ),
)

_TASK = "rdns_task"
_DONE = "rdns_done"
_MAX_NAMES = 3

# Labels that access networks put in their generic host names.
_DYNAMIC_WORDS = re.compile(
    r"(?:^|[^a-z])(?:dhcp|dyn|dynamic|dynip|pool|ppp|pppoe|cable|adsl|vdsl|xdsl|dsl|"
    r"dial|dialup|dialin|cpe|broadband|bbcust|customer|cust|resnet|residential|"
    r"mobile|wireless|unassigned|unknown|nat)(?:$|[^a-z])"
)


@dataclass(frozen=True)
class ReverseResult:
    # "ok", "none" (no PTR), "failed" (no answer).
    status: str
    names: tuple[str, ...] = ()
    confirmed: str = ""
    # Forward lookups that failed: "not confirmed" is then unproven.
    forward_failed: bool = False


async def lookup(resolver: Resolver, ip: str) -> ReverseResult:
    """PTR of ``ip`` and the forward confirmation of its names."""
    answer = await resolver.resolve(reverse_name(ip), "PTR")
    if answer.failed:
        return ReverseResult("failed")
    if not answer.ok or not answer.records:
        return ReverseResult("none")
    names = tuple(n.lower() for n in answer.records[:_MAX_NAMES])
    rdtype = "AAAA" if ipaddress.ip_address(ip).version == 6 else "A"
    forwards = await eager.gather(*(resolver.resolve(n, rdtype) for n in names))
    wanted = ipaddress.ip_address(ip)
    for name, forward in zip(names, forwards, strict=True):
        if forward.ok and any(_same_ip(r, wanted) for r in forward.records):
            return ReverseResult("ok", names, name)
    return ReverseResult("ok", names, "", any(f.failed for f in forwards))


def _same_ip(record: str, wanted: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    try:
        return ipaddress.ip_address(record) == wanted
    except ValueError:
        return False


def looks_dynamic(name: str, ip: str, extra: list[re.Pattern[str]] | None = None) -> str:
    """Why ``name`` looks like a generic access-network host name, or ""."""
    labels = name.lower().rstrip(".").split(".")
    # Only the host part counts: "cable.example" may be a company's domain.
    host = ".".join(labels[:-2]) if len(labels) > 2 else ""
    for pattern in extra or []:
        if pattern.search(name):
            return f"pattern {pattern.pattern}"
    if host and _embeds_address(host, ip):
        return "address in name"
    if host and (match := _DYNAMIC_WORDS.search(host)):
        return f"generic label {match.group(0).strip('.-_0123456789')}"
    return ""


def _embeds_address(host: str, ip: str) -> bool:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    if address.version != 4:
        return False
    octets = [int(o) for o in str(address).split(".")]
    numbers = [int(n) for n in re.findall(r"\d+", host)]
    for candidate in (octets, octets[::-1]):
        for i in range(len(numbers) - 3):
            if numbers[i : i + 4] == candidate:
                return True
    packed = "".join(f"{o:03d}" for o in octets)
    hexed = "".join(f"{o:02x}" for o in octets)
    return packed in host or bool(re.search(rf"(?:^|[^0-9a-f]){hexed}(?:$|[^0-9a-f])", host))


def start_lookup(session: Session, resolver: Resolver) -> None:
    start_session_task(session, _TASK, lambda: lookup(resolver, session.client_ip))


class RdnsStart(Check):
    name: ClassVar[str] = "rdns"
    stage: ClassVar[str] = Stage.CONNECT

    def __init__(self, resolver: Resolver, skip: NetworkSet) -> None:
        self.resolver = resolver
        self.skip = skip

    async def run(self, tx: Transaction, evidence: Evidence) -> None:
        if tx.session.client_ip not in self.skip:
            start_lookup(tx.session, self.resolver)


class RdnsVerdict(Check):
    name: ClassVar[str] = "rdns"
    stage: ClassVar[str] = Stage.HELO

    def __init__(self, resolver: Resolver, skip: NetworkSet, extra: list[re.Pattern[str]]) -> None:
        self.resolver = resolver
        self.skip = skip
        self.extra = extra

    async def run(self, tx: Transaction, evidence: Evidence) -> None:
        session = tx.session
        if session.notes.get(_DONE) or session.client_ip in self.skip:
            return
        start_lookup(session, self.resolver)
        result: ReverseResult = await asyncio.shield(session.notes[_TASK])
        session.notes[_DONE] = True
        if result.status == "failed":
            SPEC.add(evidence, "RDNS_UNAVAILABLE", "PTR lookup failed")
            return
        if result.status == "none":
            SPEC.add(evidence, "RDNS_NONE", session.client_ip)
            return
        session.client_rdns = result.confirmed or result.names[0]
        if not result.confirmed:
            if result.forward_failed:
                SPEC.add(evidence, "RDNS_UNAVAILABLE", "forward lookup failed")
            else:
                SPEC.add(evidence, "RDNS_NOT_CONFIRMED", result.names[0])
        why = looks_dynamic(session.client_rdns, session.client_ip, self.extra)
        if why:
            SPEC.add(evidence, "RDNS_DYNAMIC", f"{session.client_rdns}: {why}")


def build(services: Services) -> list[Check]:
    if services.resolver is None:
        return []
    config = services.config.rdns
    skip = NetworkSet(config.skip_networks)
    extra = [re.compile(p, re.IGNORECASE) for p in config.dynamic_patterns]
    return [RdnsStart(services.resolver, skip), RdnsVerdict(services.resolver, skip, extra)]
