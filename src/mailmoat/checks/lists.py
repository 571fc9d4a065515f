"""Static allow and deny lists (first at their stages: the checks an allowlist spares require them).

Contract: entries come from ``lists.allow`` / ``lists.deny`` and from the
files in ``lists.allow_files`` / ``lists.deny_files`` (one entry a line,
``#`` starts a comment). A file is re-read when its modification time or
size changes, looked at no more than every ``lists.reload_interval``
seconds; a file that cannot be read keeps its last good entries (logged).
Entry syntax: ``192.0.2.0/24`` or ``192.0.2.1`` (client network, connect
stage), ``helo:mx.example.org`` (HELO name, helo stage), ``from:user@example.org``
(sender address), ``from:example.org`` (sender domain) and
``from:.example.org`` (the domain and its sub-domains) (mail stage).

Verdicts: an allow entry gives ``Forced(ACCEPT, PERMANENT_ALLOW, "allowlist")``:
the pipeline skips the remaining tests (and the score) for the session or
transaction, the SMTP front skips the pregreet test. A deny entry gives
``Forced(REJECT, PERMANENT_DENY, "denylist", 554 5.7.1)``, applied at the
first RCPT. Allow beats deny (see ``core.symbols.Precedence``).
Symbols: ``LIST_ALLOW_NET``, ``LIST_DENY_NET``, ``LIST_ALLOW_HELO``,
``LIST_DENY_HELO``, ``LIST_ALLOW_FROM``, ``LIST_DENY_FROM`` (score 0; the
verdict carries the weight), each with the matching entry as detail.
A malformed entry is a configuration error (``ValueError`` at build time
for inline entries; logged and skipped in files).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import ClassVar

from mailmoat.checks._addr import Network, parse_network
from mailmoat.checks.base import Check, Services
from mailmoat.checks.spec import CheckSpec, SymbolSpec
from mailmoat.core.symbols import Action, Evidence, Forced, Precedence, Stage
from mailmoat.core.transaction import Transaction

log = logging.getLogger("mailmoat.checks.lists")

_KINDS = {
    "NET": "client address",
    "HELO": "HELO name",
    "FROM": "envelope sender",
}
SPEC = CheckSpec(
    name="lists",
    stages=(Stage.CONNECT, Stage.HELO, Stage.MAIL),
    summary="Static allow and deny lists (lists.allow, lists.deny and their files).",
    symbols=tuple(
        SymbolSpec(
            f"LIST_{verdict}_{kind}",
            0.0,
            f"The {what} is on the {verdict.lower()} list"
            + (": the remaining tests are skipped." if verdict == "ALLOW" else ": refused."),
            "lists",
        )
        for verdict in ("ALLOW", "DENY")
        for kind, what in _KINDS.items()
    ),
)

ALLOW = Forced(Action.ACCEPT, Precedence.PERMANENT_ALLOW, "allowlist")
DENY = Forced(Action.REJECT, Precedence.PERMANENT_DENY, "denylist", 554, "5.7.1", "Access denied")


@dataclass
class Entries:
    networks: list[tuple[Network, str]] = field(default_factory=list)
    helos: set[str] = field(default_factory=set)
    senders: set[str] = field(default_factory=set)
    # Domains: exact ("example.org") and with sub-domains (".example.org").
    domains: set[str] = field(default_factory=set)

    def add(self, entry: str) -> None:
        """Add one entry; ValueError when it is none of the known forms."""
        text = entry.strip()
        kind, sep, value = text.partition(":")
        if sep and kind.lower() == "helo" and value:
            self.helos.add(value.lower().rstrip("."))
        elif sep and kind.lower() == "from" and value:
            value = value.lower().strip("<>")
            if "@" in value:
                self.senders.add(value)
            else:
                self.domains.add(value.rstrip("."))
        else:
            self.networks.append((parse_network(text), text))

    def extend(self, other: Entries) -> None:
        self.networks.extend(other.networks)
        self.helos |= other.helos
        self.senders |= other.senders
        self.domains |= other.domains

    def network_of(self, ip: str) -> str:
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return ""
        for network, text in self.networks:
            if address.version == network.version and address in network:
                return text
        return ""

    def helo_of(self, helo: str) -> str:
        name = helo.lower().rstrip(".")
        return name if name in self.helos else ""

    def sender_of(self, sender: str) -> str:
        address = sender.lower()
        if address in self.senders:
            return address
        domain = address.rpartition("@")[2]
        if not domain:
            return ""
        if domain in self.domains:
            return domain
        labels = domain.split(".")
        for i in range(len(labels)):
            suffix = "." + ".".join(labels[i:])
            if suffix in self.domains:
                return suffix
        return ""


def parse_lines(lines: Iterable[str], source: str) -> Entries:
    entries = Entries()
    for number, raw in enumerate(lines, 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            entries.add(line)
        except ValueError:
            log.error("%s:%d: not a list entry, skipped: %r", source, number, line)
    return entries


_UNREADABLE = (0.0, -1)


class ListFile:
    """One list file, re-read when its mtime/size changes."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.stamp: tuple[float, int] | None = None
        self.entries = Entries()

    def refresh(self) -> None:
        try:
            info = os.stat(self.path)
            stamp = (info.st_mtime, info.st_size)
            if stamp == self.stamp:
                return
            with open(self.path, encoding="utf-8", errors="replace") as handle:
                self.entries = parse_lines(handle, self.path)
            self.stamp = stamp
            log.info("list file %s loaded", self.path)
        except OSError as exc:
            if self.stamp != _UNREADABLE:  # log once per outage, not every check
                log.error("list file %s unreadable, keeping last entries: %s", self.path, exc)
            self.stamp = _UNREADABLE


class ListSet:
    """Inline entries plus files; ``current()`` re-checks files when due."""

    def __init__(
        self,
        inline: Iterable[str],
        files: Iterable[str],
        interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.inline = Entries()
        for entry in inline:
            self.inline.add(entry)
        self.files = [ListFile(p) for p in files]
        self.interval = interval
        self.clock = clock
        self._checked = float("-inf")
        self._merged = self.inline

    def current(self) -> Entries:
        now = self.clock()
        if self.files and now - self._checked >= self.interval:
            self._checked = now
            for list_file in self.files:
                list_file.refresh()
            merged = Entries()
            merged.extend(self.inline)
            for list_file in self.files:
                merged.extend(list_file.entries)
            self._merged = merged
        return self._merged


class _ListCheck(Check):
    name: ClassVar[str] = "lists"
    kind: ClassVar[str]

    def __init__(self, allow: ListSet, deny: ListSet) -> None:
        self.allow = allow
        self.deny = deny

    def key(self, tx: Transaction) -> str:
        raise NotImplementedError

    def lookup(self, entries: Entries, key: str) -> str:
        raise NotImplementedError

    async def run(self, tx: Transaction, evidence: Evidence) -> None:
        key = self.key(tx)
        if not key:
            return
        # Policy: a permanent allow entry wins over a deny entry for the
        # same client, so an administrator can punch holes into deny ranges.
        allowed = self.lookup(self.allow.current(), key)
        if allowed:
            SPEC.add(evidence, f"LIST_ALLOW_{self.kind}", allowed)
            evidence.force(ALLOW)
            return
        denied = self.lookup(self.deny.current(), key)
        if denied:
            SPEC.add(evidence, f"LIST_DENY_{self.kind}", denied)
            evidence.force(DENY)


class NetworkList(_ListCheck):
    stage: ClassVar[str] = Stage.CONNECT
    kind: ClassVar[str] = "NET"

    def key(self, tx: Transaction) -> str:
        return tx.session.client_ip

    def lookup(self, entries: Entries, key: str) -> str:
        return entries.network_of(key)


class HeloList(_ListCheck):
    stage: ClassVar[str] = Stage.HELO
    kind: ClassVar[str] = "HELO"

    def key(self, tx: Transaction) -> str:
        return tx.session.helo

    def lookup(self, entries: Entries, key: str) -> str:
        return entries.helo_of(key)


class SenderList(_ListCheck):
    stage: ClassVar[str] = Stage.MAIL
    kind: ClassVar[str] = "FROM"

    def key(self, tx: Transaction) -> str:
        return tx.mail_from

    def lookup(self, entries: Entries, key: str) -> str:
        return entries.sender_of(key)


def build(services: Services) -> list[Check]:
    config = services.config.lists
    if not (config.allow or config.deny or config.allow_files or config.deny_files):
        return []
    allow = ListSet(config.allow, config.allow_files, config.reload_interval)
    deny = ListSet(config.deny, config.deny_files, config.reload_interval)
    return [NetworkList(allow, deny), HeloList(allow, deny), SenderList(allow, deny)]
