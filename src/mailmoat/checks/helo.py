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
from mailmoat.checks.spec import CheckSpec, SymbolSpec
from mailmoat.core.symbols import Evidence, Stage
from mailmoat.core.transaction import Transaction

SPEC = CheckSpec(
    name="helo",
    stages=(Stage.HELO,),
    summary="HELO/EHLO name sanity.",
    # After the HELO list: an allowlisted client is not judged.
    requires=("lists",),
    symbols=(
        SymbolSpec(
            "HELO_BARE_IP",
            2.0,
            "The client greeted with a bare IP address instead of a name.",
            "helo",
        ),
        SymbolSpec(
            "HELO_NOT_FQDN",
            1.0,
            "The client's HELO name is not a fully qualified domain name.",
            "helo",
        ),
        SymbolSpec(
            "HELO_OURS",
            4.0,
            "The client claims to be us (our host name or address): a forgery.",
            "helo",
        ),
        SymbolSpec(
            "HELO_BAD_SYNTAX",
            1.5,
            "The HELO argument is not a valid host name or address literal.",
            "helo",
        ),
        SymbolSpec(
            "HELO_LITERAL_MISMATCH",
            1.0,
            "The HELO address literal differs from the client's address.",
            "helo",
        ),
    ),
)

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
                SPEC.add(evidence, "HELO_BAD_SYNTAX", helo)
            elif str(literal) in self.our_addresses:
                SPEC.add(evidence, "HELO_OURS", helo)
            elif str(literal) != tx.session.client_ip:
                SPEC.add(evidence, "HELO_LITERAL_MISMATCH", helo)
            return
        if _ip(helo) is not None:
            SPEC.add(evidence, "HELO_OURS" if helo in self.our_addresses else "HELO_BARE_IP", helo)
            return
        if not _HOST_CHARS.match(helo):
            SPEC.add(evidence, "HELO_BAD_SYNTAX", helo[:64])
            return
        name = helo.lower().rstrip(".")
        if name in self.our_names:
            SPEC.add(evidence, "HELO_OURS", helo)
            return
        labels = name.split(".")
        if len(labels) < 2 or labels[-1].isdigit() or not all(labels):
            SPEC.add(evidence, "HELO_NOT_FQDN", helo)


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
