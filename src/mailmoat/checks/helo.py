"""HELO sanity (helo stage).

Symbols: ``HELO_BARE_IP`` (an address literal without brackets),
``HELO_NOT_FQDN`` (no dot, or a top label that is all digits),
``HELO_OURS`` (our own host name or listening address: a forgery),
``HELO_BAD_SYNTAX`` (characters no host name has), ``HELO_LITERAL_MISMATCH``
(a bracketed address literal that is not the client's address).
Needs nothing outside; cannot fail except by a bug.
"""

from __future__ import annotations

import ipaddress
import re
from typing import ClassVar

from mailmoat.checks.base import Check, Services
from mailmoat.core.symbols import Evidence, Stage
from mailmoat.core.transaction import Transaction

_HOST_CHARS = re.compile(r"^[A-Za-z0-9.\-_]+$")


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.removeprefix("IPv6:").removeprefix("ipv6:"))
    except ValueError:
        return None


class HeloCheck(Check):
    name: ClassVar[str] = "helo"
    stage: ClassVar[str] = Stage.HELO

    def __init__(self, our_names: set[str], our_addresses: set[str]) -> None:
        self.our_names = {n.lower().rstrip(".") for n in our_names}
        self.our_addresses = our_addresses

    async def run(self, tx: Transaction, evidence: Evidence) -> None:
        helo = tx.session.helo.strip()
        if helo.startswith("[") and helo.endswith("]"):
            literal = _ip(helo[1:-1])
            if literal is None:
                evidence.add("HELO_BAD_SYNTAX", 1.5, helo)
            elif str(literal) in self.our_addresses:
                evidence.add("HELO_OURS", 4.0, helo)
            elif str(literal) != tx.session.client_ip:
                evidence.add("HELO_LITERAL_MISMATCH", 1.0, helo)
            return
        if _ip(helo) is not None:
            score = 4.0 if helo in self.our_addresses else 2.0
            evidence.add("HELO_OURS" if score == 4.0 else "HELO_BARE_IP", score, helo)
            return
        if not _HOST_CHARS.match(helo):
            evidence.add("HELO_BAD_SYNTAX", 1.5, helo[:64])
            return
        name = helo.lower().rstrip(".")
        if name in self.our_names:
            evidence.add("HELO_OURS", 4.0, helo)
            return
        labels = name.split(".")
        if len(labels) < 2 or labels[-1].isdigit() or not all(labels):
            evidence.add("HELO_NOT_FQDN", 1.0, helo)


def build(services: Services) -> list[Check]:
    config = services.config
    names = {config.smtp.hostname, *config.relay.domains}
    names.discard("localhost")
    listen_host = config.smtp.listen.rsplit(":", 1)[0].strip("[]")
    addresses = (
        {listen_host} if _ip(listen_host) and listen_host not in ("0.0.0.0", "::") else set()
    )
    addresses.discard("127.0.0.1")
    return [HeloCheck(names, addresses)]
