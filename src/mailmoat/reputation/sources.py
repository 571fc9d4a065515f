"""The sources of a client address: itself, its network and its AS.

Contract: ``Sources.of(ip)`` returns the ``Source`` keys of one client
address: ``ip:<address>``, ``net:<network>`` (``[reputation] ipv4_prefix`` /
``ipv6_prefix``, /24 and /64 by default) and, when the admin's prefix table
knows the address, ``as:AS<number>``. ``PrefixTable.load(path)`` reads a CSV
of ``prefix,asn,name`` lines (``#`` comments and blank lines skipped; the
longest matching prefix wins); a line that does not parse raises
``TableError`` naming the file and the line. Lookups are memoised; no I/O
after loading. An address that does not parse has no sources.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from mailmoat.checks._addr import Network, NetworkSet, address_of, client_net


class TableError(ValueError):
    """A table file that cannot be used: the message names file and line."""


@dataclass(frozen=True, slots=True)
class Source:
    kind: str  # "ip", "net" or "as"
    name: str  # "192.0.2.7", "192.0.2.0/24", "AS64500"

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.name}"

    @classmethod
    def parse(cls, key: str) -> Source:
        kind, _, name = key.partition(":")
        return cls(kind, name)


@dataclass(frozen=True, slots=True)
class AsInfo:
    number: int
    name: str

    @property
    def label(self) -> str:
        return f"AS{self.number}"


class PrefixTable:
    """Announced prefixes -> AS, longest prefix first."""

    def __init__(self, entries: list[tuple[Network, AsInfo]] | None = None) -> None:
        self._by_length: dict[tuple[int, int], dict[int, AsInfo]] = {}
        self.names: dict[str, str] = {}
        for network, info in entries or []:
            table = self._by_length.setdefault((network.version, network.prefixlen), {})
            table[int(network.network_address)] = info
            self.names[info.label] = info.name
        self._lengths = sorted(self._by_length, key=lambda item: -item[1])
        self.lookup = functools.lru_cache(maxsize=65_536)(self._lookup)

    def __len__(self) -> int:
        return sum(len(t) for t in self._by_length.values())

    @classmethod
    def load(cls, path: str | Path) -> PrefixTable:
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise TableError(f"{path}: cannot read the prefix table: {exc}") from exc
        entries: list[tuple[Network, AsInfo]] = []
        for number, raw in enumerate(lines, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            parts = [p.strip() for p in line.split(",", 2)]
            try:
                if len(parts) < 2:
                    raise ValueError("expected prefix,asn,name")
                network = ipaddress.ip_network(parts[0], strict=False)
                asn = int(parts[1].upper().removeprefix("AS"))
                if not 0 < asn < 2**32:
                    raise ValueError(f"AS number out of range: {asn}")
            except ValueError as exc:
                raise TableError(f"{path}:{number}: bad prefix table line {raw!r}: {exc}") from None
            entries.append((network, AsInfo(asn, parts[2] if len(parts) > 2 else "")))
        return cls(entries)

    def _lookup(self, ip: str) -> AsInfo | None:
        address = address_of(ip)
        if address is None:
            return None
        value, bits = int(address), address.max_prefixlen
        for version, length in self._lengths:
            if version != address.version:
                continue
            mask = ((1 << length) - 1) << (bits - length) if length else 0
            found = self._by_length[version, length].get(value & mask)
            if found is not None:
                return found
        return None


class Sources:
    """The source keys of client addresses, by the configured prefixes."""

    def __init__(
        self, table: PrefixTable | None = None, ipv4_prefix: int = 24, ipv6_prefix: int = 64
    ) -> None:
        self.table = table or PrefixTable()
        self.ipv4_prefix = ipv4_prefix
        self.ipv6_prefix = ipv6_prefix
        self.of = functools.lru_cache(maxsize=65_536)(self._of)

    def _of(self, ip: str) -> tuple[Source, ...]:
        address = address_of(ip)
        if address is None:
            return ()
        text = str(address)
        found = [
            Source("ip", text),
            Source("net", client_net(text, self.ipv4_prefix, self.ipv6_prefix)),
        ]
        info = self.table.lookup(text)
        if info is not None:
            found.append(Source("as", info.label))
        return tuple(found)


def protected_networks(
    own: Iterable[str], allow: Iterable[str] = (), allow_files: Iterable[str] = ()
) -> NetworkSet:
    """Networks that are never counted, scored, reported or exported: our
    own (``[reputation] own_networks``) and every address or network entry
    of the allow lists (``lists.allow``, its files, ``zone.allow``); other
    list entries (``helo:``, ``from:``) and unreadable files are skipped."""
    entries = [*own]
    lines = [*allow]
    for path in allow_files:
        try:
            lines += Path(path).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            continue
    for line in lines:
        text = line.split("#", 1)[0].strip()
        try:
            ipaddress.ip_network(text, strict=False)
        except ValueError:
            continue
        entries.append(text)
    return NetworkSet(entries)
