"""The resolver interface checks use: answers as values, never exceptions.

Contract: ``resolve(name, rdtype)`` returns a ``DnsAnswer`` whose ``status``
tells apart a real "no such name" (``nxdomain``/``nodata``: evidence) from a
failure (``timeout``/``servfail``: no evidence; the check decides its fail
mode). ``records`` are presentation-format strings: A/AAAA addresses, TXT
strings joined per record, PTR/MX/CNAME names without the final dot.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

DnsStatus = Literal["ok", "nxdomain", "nodata", "timeout", "servfail"]


@dataclass(frozen=True, slots=True)
class DnsAnswer:
    status: DnsStatus
    records: tuple[str, ...] = ()
    ttl: int = 0

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def failed(self) -> bool:
        return self.status in ("timeout", "servfail")


class Resolver(Protocol):
    async def resolve(self, name: str, rdtype: str) -> DnsAnswer: ...


class OfflineResolver:
    """Sends no query: every name is a ``servfail`` (no evidence either
    way). For ``mailmoat scan`` without a config, which must not reach the
    network on its own."""

    async def resolve(self, name: str, rdtype: str) -> DnsAnswer:
        return DnsAnswer("servfail")
