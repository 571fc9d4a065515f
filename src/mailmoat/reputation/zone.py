"""Our own DNSBL zone: the worst sources, as rbldnsd data or a BIND zone.

Contract: ``listings(config, store, now)`` returns the sources to list,
worst first: client addresses (and, with ``zone.networks``, their /24 or /64
networks) seen within ``reputation.retention`` whose decayed quarantined and
refused count reaches ``zone.min_bad`` with a bad share of at least
``zone.bad_share``, and whose last bad message is at most ``zone.expiry``
seconds old (older listings drop out at the next export). Our own networks,
the allow lists (``lists.allow``, its files) and ``zone.allow`` are never
listed, nor a network that holds any of them. ``render_rbldnsd`` writes a
``combined`` dataset (IPv4 ``ip4set`` and IPv6 ``ip6trie`` sections, every
entry answering 127.0.0.2 with its own TXT); ``render_bind`` a zone file
(SOA, NS, A and TXT records; networks as wildcards). ``write_atomically``
writes to a temporary file beside the target, fsyncs it and renames it into
place, so a server reading the zone never sees half of it.
"""

from __future__ import annotations

import ipaddress
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from mailmoat.config import Config
from mailmoat.reputation.counts import Counts, indexed_sources, read_counts
from mailmoat.reputation.sources import Source, protected_networks
from mailmoat.store.base import Store

ANSWER = "127.0.0.2"


@dataclass(frozen=True)
class Listing:
    source: Source
    counts: Counts

    @property
    def network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        return ipaddress.ip_network(self.source.name, strict=False)

    @property
    def reason(self) -> str:
        what = "network" if self.source.kind == "net" else "address"
        return (
            f"{self.counts.bad:.0f} of {self.counts.total:.0f} recent messages from this "
            f"{what} were spam"
        )


async def listings(config: Config, store: Store, now: float | None = None) -> list[Listing]:
    now = time.time() if now is None else now
    zone, settings = config.zone, config.reputation
    kinds = ("ip", "net") if zone.networks else ("ip",)
    keys = [
        k for k in await indexed_sources(store, now, settings.retention) if k.split(":")[0] in kinds
    ]
    counts = await read_counts(store, keys, now, settings.half_life, settings.retention)
    protected = protected_networks(
        (*settings.own_networks, *zone.allow), config.lists.allow, config.lists.allow_files
    )
    found: list[Listing] = []
    for key, count in zip(keys, counts, strict=True):
        listing = Listing(Source.parse(key), count)
        if count.bad < zone.min_bad or count.bad_share < zone.bad_share:
            continue
        if now - (count.last_bad + 3600) > zone.expiry:
            continue
        if _touches(listing, protected.networks):
            continue
        found.append(listing)
    return sorted(found, key=lambda item: (-item.counts.bad, item.source.key))


def _touches(
    listing: Listing, protected: list[ipaddress.IPv4Network | ipaddress.IPv6Network]
) -> bool:
    try:
        network = listing.network
    except ValueError:
        return True  # not an address: never listed
    return any(p.version == network.version and network.overlaps(p) for p in protected)


def txt_of(config: Config, listing: Listing) -> str:
    ip = (
        str(listing.network.network_address)
        if listing.source.kind == "net"
        else listing.source.name
    )
    url = config.zone.lookup_url.replace("{ip}", ip)
    text = config.zone.txt.replace("{reason}", listing.reason).replace("{url}", url)
    return "".join(c for c in text if c.isprintable() and c not in '"\\')[:250]


def render_rbldnsd(config: Config, found: list[Listing], now: float) -> str:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(now))
    lines = [
        f"# mailmoat zone export {stamp}: {len(found)} entries (rbldnsd combined dataset)",
        f"$TTL {config.zone.ttl}",
    ]
    for version, dataset in ((4, "ip4set"), (6, "ip6trie")):
        entries = [item for item in found if item.network.version == version]
        if not entries:
            continue
        lines.append(f"$DATASET {dataset} @")
        for item in entries:
            name = (
                item.source.name if item.source.kind == "net" else str(item.network.network_address)
            )
            lines.append(f"{name} :{ANSWER}:{txt_of(config, item)}")
    return "\n".join(lines) + "\n"


def _owner(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> str | None:
    """The owner name below the zone: reversed octets or nibbles, a wildcard
    for a network (None: a prefix not on an octet or nibble boundary)."""
    step = 8 if network.version == 4 else 4
    if network.prefixlen % step:
        return None
    if network.version == 4:
        labels = str(network.network_address).split(".")
    else:
        labels = list(network.network_address.exploded.replace(":", ""))
    kept = labels[: network.prefixlen // step]
    owner = ".".join(reversed(kept))
    return owner if network.prefixlen == network.max_prefixlen else f"*.{owner}"


def render_bind(config: Config, found: list[Listing], now: float) -> str:
    zone = config.zone.name.rstrip(".")
    ttl = config.zone.ttl
    serial = int(now)
    lines = [
        f"; mailmoat zone export: {len(found)} entries",
        f"$ORIGIN {zone}.",
        f"$TTL {ttl}",
        f"@ IN SOA ns.{zone}. hostmaster.{zone}. ({serial} {ttl} {max(60, ttl // 6)} 604800 {ttl})",
        f"@ IN NS ns.{zone}.",
        "ns IN A 127.0.0.1",
    ]
    for item in found:
        owner = _owner(item.network)
        if owner is None:
            continue
        lines.append(f"{owner} IN A {ANSWER}")
        lines.append(f'{owner} IN TXT "{txt_of(config, item)}"')
    return "\n".join(lines) + "\n"


def write_atomically(path: str | Path, text: str) -> None:
    target = Path(path)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # the DNS server reads it, often as another user
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
