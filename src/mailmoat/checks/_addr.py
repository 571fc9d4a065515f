"""Address helpers shared by the screening checks (private).

``client_net`` maps a client address to the network the stateful checks key
on (greylisting and rate limits treat a /24 or /64 as one sender, because
one host there can hop addresses). ``NetworkSet`` answers "is this address in
any of these CIDR networks"; a malformed entry raises ``ValueError`` naming it.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.lru_cache(maxsize=65_536)
def address_of(ip: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The parsed address (IPv4-mapped IPv6 as IPv4), None if not one; cached,
    as a storm asks about the same addresses over and over."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@functools.lru_cache(maxsize=65_536)
def client_net(ip: str, ipv4_prefix: int = 24, ipv6_prefix: int = 64) -> str:
    """``192.0.2.77`` -> ``192.0.2.0/24``; unparsable input comes back as is."""
    address = address_of(ip)
    if address is None:
        return ip
    prefix = ipv4_prefix if address.version == 4 else ipv6_prefix
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def parse_network(text: str) -> Network:
    """``192.0.2.0/24``, ``192.0.2.1``, ``2001:db8::/32``; ValueError if not one."""
    return ipaddress.ip_network(text.strip(), strict=False)


class NetworkSet:
    """Networks to test client addresses against; answers are remembered
    (the set never changes, and a client comes back many times)."""

    MEMO_SIZE = 65_536

    def __init__(self, entries: Iterable[str] = ()) -> None:
        self.networks: list[Network] = [parse_network(e) for e in entries]
        self._memo: dict[str, bool] = {}

    def __contains__(self, ip: object) -> bool:
        if not isinstance(ip, str) or not self.networks:
            return False
        found = self._memo.get(ip)
        if found is None:
            address = address_of(ip)
            found = address is not None and any(
                address.version == net.version and address in net for net in self.networks
            )
            if len(self._memo) >= self.MEMO_SIZE:
                self._memo.clear()
            self._memo[ip] = found
        return found

    def __bool__(self) -> bool:
        return bool(self.networks)
