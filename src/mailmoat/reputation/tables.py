"""The admin's abuse contact table, and the start-up check of both tables.

Contract: ``ContactTable.load(path)`` reads lines of ``SOURCE ADDRESS``
where SOURCE is an address or CIDR network (``192.0.2.0/24``) or an AS
(``AS64500``), and ADDRESS the mailbox that takes abuse reports for it
(``#`` comments and blank lines skipped). A line that does not parse raises
``TableError`` naming the file and the line. ``contact_for(ip, asn)`` is the
address of the most specific network holding ``ip``, else that of its AS,
else None: reports never go anywhere the table does not say.
``table_problems(config)`` tries ``reputation.prefix_table`` and
``reports.contacts`` for ``mailmoat config --check`` and the serving commands.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

from mailmoat.checks._addr import Network, address_of
from mailmoat.config import Config
from mailmoat.reputation.sources import PrefixTable, TableError

_MAILBOX = re.compile(r"^[^@\s<>\"]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$")


class ContactTable:
    def __init__(self, networks: list[tuple[Network, str]], ases: dict[str, str]) -> None:
        # Most specific first.
        self.networks = sorted(networks, key=lambda item: -item[0].prefixlen)
        self.ases = ases

    @property
    def addresses(self) -> frozenset[str]:
        return frozenset([a for _, a in self.networks] + list(self.ases.values()))

    @classmethod
    def load(cls, path: str | Path) -> ContactTable:
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise TableError(f"{path}: cannot read the contact table: {exc}") from exc
        networks: list[tuple[Network, str]] = []
        ases: dict[str, str] = {}
        for number, raw in enumerate(lines, 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            problem = ""
            if len(parts) != 2:
                problem = "expected SOURCE ADDRESS (a CIDR network or AS number, a mail address)"
            elif not _MAILBOX.match(parts[1]):
                problem = f"not a mail address: {parts[1]!r}"
            elif re.fullmatch(r"(?i)AS\d{1,10}", parts[0]):
                ases[parts[0].upper()] = parts[1]
                continue
            else:
                try:
                    networks.append((ipaddress.ip_network(parts[0], strict=False), parts[1]))
                    continue
                except ValueError as exc:
                    problem = f"not a network or AS: {exc}"
            raise TableError(f"{path}:{number}: bad contact table line {raw!r}: {problem}")
        return cls(networks, ases)

    def contact_for(self, ip: str, asn: str | None = None) -> str | None:
        address = address_of(ip)
        if address is not None:
            for network, contact in self.networks:
                if network.version == address.version and address in network:
                    return contact
        if asn:
            return self.ases.get(asn.upper())
        return None


def table_problems(config: Config) -> list[str]:
    problems: list[str] = []
    if config.reputation.prefix_table:
        try:
            PrefixTable.load(config.reputation.prefix_table)
        except TableError as exc:
            problems.append(f"reputation.prefix_table: {exc}")
    if config.reports.contacts:
        try:
            ContactTable.load(config.reports.contacts)
        except TableError as exc:
            problems.append(f"reports.contacts: {exc}")
    return problems
