"""A lean DNS client: long-lived UDP sockets, TCP when the answer is truncated.

Why not dnspython's resolver for every query: it opens a new UDP socket per
query and runs its generic answer machinery, which under a botnet storm
(thousands of DNSBL lookups a second) costs more CPU than the rest of a
connection. This client keeps a few connected UDP sockets per nameserver and
matches replies to queries by id and question. A response of a plain shape
is read by ``dns.wire`` without dnspython's objects; any other goes through
dnspython's parser and its ``is_response`` test, as every response did before.

Contract: ``exchange(question, timeout)`` sends the query for ``question``
(the question section, ``dns.wire.question``) and returns the nameserver's
response to it (any rcode): a ``dns.wire.Parsed`` when ``dns.wire.parse``
knows its shape, else the ``dns.message.Message`` dnspython read (also
after a truncated answer, asked again over TCP). It raises
``dns.exception.Timeout`` when none came within ``timeout`` seconds (the
query is re-sent once, halfway), or ``OSError`` when the nameserver is
unreachable (ICMP port unreachable on the connected socket). A datagram
that is not the response to the query is ignored. Spoofing resistance: a
connected socket only accepts datagrams from the nameserver's address; ids
are random and the question must match; the sockets' source ports are
random ephemeral ports.
"""

from __future__ import annotations

import asyncio
import random
import secrets

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message

from mailmoat.dns import wire

_SOCKETS = 4
Response = wire.Parsed | dns.message.Message


class _Endpoint(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        # id -> (the question asked, the future its response completes)
        self.pending: dict[int, tuple[bytes, asyncio.Future[Response]]] = {}
        self.alive = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        if len(data) < 12:
            return
        ident = int.from_bytes(data[:2], "big")
        entry = self.pending.get(ident)
        if entry is None:
            return
        question, future = entry
        if future.done():
            return
        parsed = wire.parse(data, ident, question)
        if parsed is not None:
            future.set_result(parsed)
            return
        try:
            response = dns.message.from_wire(data)
        except (dns.exception.DNSException, ValueError):
            return
        if as_message(ident, question).is_response(response):
            future.set_result(response)

    def error_received(self, exc: Exception) -> None:
        # The kernel does not say which query the ICMP error belongs to.
        for _query, future in self.pending.values():
            if not future.done():
                future.set_exception(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.alive = False
        self.error_received(exc or ConnectionResetError("DNS socket closed"))


class DnsClient:
    """Queries to one nameserver ``host:port``."""

    def __init__(self, host: str, port: int = 53, sockets: int = _SOCKETS) -> None:
        self.host = host
        self.port = port
        self.sockets = sockets
        self._endpoints: list[_Endpoint] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock: asyncio.Lock | None = None

    async def _endpoint(self) -> _Endpoint:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new event loop (tests): start afresh
            self._loop, self._endpoints, self._lock = loop, [], asyncio.Lock()
        assert self._lock is not None
        self._endpoints = [e for e in self._endpoints if e.alive]
        if len(self._endpoints) >= self.sockets:
            return random.choice(self._endpoints)
        async with self._lock:
            if len(self._endpoints) < self.sockets:
                _transport, endpoint = await loop.create_datagram_endpoint(
                    _Endpoint, remote_addr=(self.host, self.port)
                )
                self._endpoints.append(endpoint)
                return endpoint
        return random.choice(self._endpoints)

    async def exchange(self, question: bytes, timeout: float) -> Response:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        for attempt in range(2):
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            wait = remaining if attempt else min(remaining, max(timeout / 2, 0.1))
            endpoint = await self._endpoint()
            # Unpredictable (secrets, not random's Mersenne Twister, whose
            # state other outputs could reveal): the id is what stands
            # against forged answers besides the source port.
            ident = secrets.randbelow(65536)
            while ident in endpoint.pending:
                ident = secrets.randbelow(65536)
            future: asyncio.Future[Response] = loop.create_future()
            endpoint.pending[ident] = (question, future)
            try:
                assert endpoint.transport is not None
                endpoint.transport.sendto(wire.query(ident, question))
                async with asyncio.timeout(wait):
                    response = await future
            except TimeoutError:
                continue
            finally:
                endpoint.pending.pop(ident, None)
            if isinstance(response, dns.message.Message) and response.flags & dns.flags.TC:
                return await dns.asyncquery.tcp(
                    as_message(ident, question),
                    self.host,
                    timeout=max(deadline - loop.time(), 0.1),
                    port=self.port,
                )
            return response
        raise dns.exception.Timeout(timeout=timeout)  # type: ignore[no-untyped-call]


def as_message(ident: int, question: bytes) -> dns.message.Message:
    """The query for ``question`` as dnspython's message (for its parser's
    path: the response test, TCP)."""
    return dns.message.from_wire(wire.query(ident, question))
