"""A caching, de-duplicating async stub resolver (own sockets; the common
answers read by ``dns.wire``, any other by dnspython).

Contract: ``CachingResolver.resolve(name, rdtype)`` returns a ``DnsAnswer``
and never raises for DNS trouble: a missing name is ``nxdomain``, a name
without that record type ``nodata``, no answer within ``timeout`` seconds
(retries included) ``timeout``, and anything else (SERVFAIL, REFUSED,
unreachable server, malformed reply) ``servfail``.

Caching policy: positive answers live for their TTL, negative answers
(NXDOMAIN/NODATA) for the SOA minimum of their authority section (RFC 2308),
both clamped to ``[min_ttl, max_ttl]`` (default 60 s .. 1 h) so a zero TTL
cannot turn a storm into a query flood and a week-long TTL cannot pin a
stale listing. Failures are not cached: the next caller asks again.
Identical queries in flight share one upstream query. The cache holds at
most ``cache_size`` entries; when full, expired entries go first, then the
oldest.

Inputs: a nameserver ``host:port`` (default: the system resolver from
/etc/resolv.conf), a timeout, and a monotonic clock (injectable for tests).
Names are always taken as absolute: no search list is applied.
Failed lookups are logged at DEBUG only and counted by rcode
(``mailmoat_dns_errors_total`` on /metrics): a dead list must not drown the
transaction lines.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import os
import time
from collections.abc import Callable

import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.resolver
import dns.rrset

from mailmoat.dns import wire
from mailmoat.dns.base import DnsAnswer
from mailmoat.dns.transport import DnsClient, as_message
from mailmoat.metrics import count_dns_error

log = logging.getLogger("mailmoat.dns")


class CachingResolver:
    """The ``mailmoat.dns.Resolver`` used by checks; see the module contract."""

    def __init__(
        self,
        nameserver: str = "",
        *,
        timeout: float = 3.0,
        min_ttl: float = 60.0,
        max_ttl: float = 3600.0,
        cache_size: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.timeout = timeout
        self.min_ttl = min_ttl
        self.max_ttl = max_ttl
        self.cache_size = cache_size
        self.clock = clock
        self._cache: dict[tuple[str, str], tuple[float, DnsAnswer]] = {}
        self._inflight: dict[tuple[str, str], asyncio.Task[DnsAnswer]] = {}
        # Upstream queries actually sent (cache misses not shared in flight).
        self.queries = 0
        # MAILMOAT_NAMESERVER replaces the system resolver as the default: the
        # test suite and benchmarks set it to a loopback address so that no
        # query ever leaves the machine, whatever a test's config says.
        nameserver = nameserver or os.environ.get("MAILMOAT_NAMESERVER", "")
        if nameserver:
            from mailmoat.config import parse_hostport

            host, port = parse_hostport(nameserver, where="dns.nameserver", default_port=53)
            servers = [(host, port)]
        else:
            try:
                system = dns.resolver.Resolver(configure=True)
                servers = [(str(ns), int(system.port)) for ns in system.nameservers]
            except dns.resolver.NoResolverConfiguration:
                servers = []
            if not servers:
                log.warning("no usable /etc/resolv.conf; using 127.0.0.1:53")
                servers = [("127.0.0.1", 53)]
        # Tried in turn, one per attempt, like resolv.conf's nameserver lines.
        self._clients = [DnsClient(host, port) for host, port in servers]

    async def resolve(self, name: str, rdtype: str) -> DnsAnswer:
        key = (name.lower().rstrip("."), rdtype.upper())
        cached = self._cache.get(key)
        if cached is not None:
            if cached[0] > self.clock():
                return cached[1]
            del self._cache[key]
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._query(*key))
            self._inflight[key] = task
            task.add_done_callback(lambda _t: self._inflight.pop(key, None))
        # A cancelled caller must not cancel the query others are waiting on.
        return await asyncio.shield(task)

    def cached(self, name: str, rdtype: str) -> DnsAnswer | None:
        """The live cached answer, if any (for tests and diagnostics)."""
        entry = self._cache.get((name.lower().rstrip("."), rdtype.upper()))
        return entry[1] if entry is not None and entry[0] > self.clock() else None

    def clear(self) -> None:
        self._cache.clear()

    # -- internals ----------------------------------------------------------

    async def _query(self, name: str, rdtype: str) -> DnsAnswer:
        self.queries += 1
        log.debug("dns query=%s/%s sent", name, rdtype)
        answer = await self._ask(name, rdtype)
        if not answer.failed:
            self._store((name, rdtype), answer)
        return answer

    async def _ask(self, name: str, rdtype: str) -> DnsAnswer:
        # The question as dnspython writes it; built here for plain names.
        question = wire.question(name, rdtype)
        if question is None:
            try:
                question = dns.message.make_query(dns.name.from_text(name), rdtype).to_wire()[12:]
            except (dns.exception.DNSException, ValueError) as exc:
                log.debug("dns query=%s/%s status=servfail: %s", name, rdtype, exc)
                count_dns_error("error")
                return DnsAnswer("servfail")
        problem = "no nameserver"
        for client in self._clients:
            try:
                response = await client.exchange(question, self.timeout / len(self._clients))
            except dns.exception.Timeout:
                problem = "timeout"
                continue
            except (dns.exception.DNSException, OSError, ValueError) as exc:
                problem = f"{type(exc).__name__}: {exc}"
                continue
            if isinstance(response, wire.Parsed):
                return self._read(response)
            return self._interpret(as_message(0, question), response, rdtype)
        if problem == "timeout":
            log.debug("dns query=%s/%s status=timeout after %gs", name, rdtype, self.timeout)
            count_dns_error("timeout")
            return DnsAnswer("timeout")
        log.debug("dns query=%s/%s status=servfail: %s", name, rdtype, problem)
        count_dns_error("error")
        return DnsAnswer("servfail")

    def _read(self, response: wire.Parsed) -> DnsAnswer:
        """``_interpret`` for a response ``dns.wire`` read (NOERROR or
        NXDOMAIN; answer records of the asked name and type only)."""
        soa = response.soa
        negative = self._clamp(0 if soa is None else min(soa))
        if response.rcode == wire.NXDOMAIN:
            return DnsAnswer("nxdomain", (), negative)
        if response.records:
            return DnsAnswer("ok", response.texts(), self._clamp(min(self.max_ttl, response.ttl)))
        return DnsAnswer("nodata", (), negative)

    def _interpret(
        self, query: dns.message.Message, response: dns.message.Message, rdtype: str
    ) -> DnsAnswer:
        rcode = response.rcode()
        if rcode == dns.rcode.NXDOMAIN:
            return DnsAnswer("nxdomain", (), self._negative_ttl(response))
        if rcode != dns.rcode.NOERROR:
            count_dns_error(dns.rcode.to_text(rcode))
            log.debug(
                "dns query=%s/%s status=servfail: rcode %s",
                query.question[0].name,
                rdtype,
                dns.rcode.to_text(rcode),
            )
            return DnsAnswer("servfail")
        wanted = dns.rdatatype.from_text(rdtype)
        name = query.question[0].name
        ttl = float(self.max_ttl)
        # Follow CNAMEs inside the answer section (a recursive resolver
        # includes the chain), at most a few hops.
        for _hop in range(8):
            rrset = _find(response, name, wanted)
            if rrset is not None:
                ttl = min(ttl, rrset.ttl)
                records = tuple(_present(rdata, rdtype) for rdata in rrset)
                return DnsAnswer("ok", records, self._clamp(ttl))
            alias = _find(response, name, dns.rdatatype.CNAME)
            if alias is None or wanted == dns.rdatatype.CNAME:
                break
            ttl = min(ttl, alias.ttl)
            name = alias[0].target  # type: ignore[attr-defined]
        return DnsAnswer("nodata", (), self._negative_ttl(response))

    def _negative_ttl(self, response: dns.message.Message | None) -> int:
        """RFC 2308: min(SOA TTL, SOA MINIMUM) from the authority section."""
        if response is not None:
            for rrset in response.authority:
                if rrset.rdtype == dns.rdatatype.SOA and len(rrset):
                    minimum = min(rrset.ttl, rrset[0].minimum)  # type: ignore[attr-defined]
                    return self._clamp(minimum)
        return self._clamp(0)

    def _clamp(self, ttl: float) -> int:
        return int(max(self.min_ttl, min(self.max_ttl, ttl)))

    def _store(self, key: tuple[str, str], answer: DnsAnswer) -> None:
        now = self.clock()
        if len(self._cache) >= self.cache_size:
            for stale in [k for k, (expires, _) in self._cache.items() if expires <= now]:
                del self._cache[stale]
            while len(self._cache) >= self.cache_size:
                del self._cache[next(iter(self._cache))]
        self._cache[key] = (now + answer.ttl, answer)


def _find(
    response: dns.message.Message, name: dns.name.Name, rdtype: dns.rdatatype.RdataType
) -> dns.rrset.RRset | None:
    for rrset in response.answer:
        if rrset.rdtype == rdtype and rrset.rdclass == dns.rdataclass.IN and rrset.name == name:
            return rrset
    return None


def _present(rdata: object, rdtype: str) -> str:
    if rdtype == "TXT":
        strings: tuple[bytes, ...] = rdata.strings  # type: ignore[attr-defined]
        return b"".join(strings).decode("utf-8", "replace")
    text = rdata.to_text()  # type: ignore[attr-defined]
    assert isinstance(text, str)
    return text.rstrip(".") if rdtype in ("PTR", "MX", "CNAME", "NS") else text


def reverse_name(ip: str, zone: str = "in-addr.arpa") -> str:
    """``192.0.2.1`` -> ``1.2.0.192.<zone>``; IPv6 gives nibbles (RFC 5782).

    With the default zone, IPv6 addresses go below ``ip6.arpa``. Raises
    ValueError when ``ip`` is not an address.
    """
    labels, v6 = _reversed(ip)
    if v6 and zone == "in-addr.arpa":
        zone = "ip6.arpa"
    return f"{labels}.{zone}"


@functools.lru_cache(maxsize=65_536)
def _reversed(ip: str) -> tuple[str, bool]:
    """The reversed labels of ``ip`` (octets or nibbles) and whether it is
    IPv6; remembered, as every list is asked about the same client."""
    address = ipaddress.ip_address(ip)
    if address.version == 4:
        return ".".join(reversed(str(address).split("."))), False
    return ".".join(reversed(address.exploded.replace(":", ""))), True


__all__ = ["CachingResolver", "reverse_name"]
