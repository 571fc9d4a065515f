"""URL and domain blocklists (data stage): DBL/SURBL-style zones, local lists.

Contract: takes the host names the message parser found in text and HTML
(``tx.message.domains`` and the hosts of ``tx.message.urls``, already
de-obfuscated), adds the targets of redirectors visible in URL query strings
(``?url=https%3A%2F%2Fevil.example``), reduces each to its registered domain
(Public Suffix List), and asks every configured zone about at most
``urlbl.max_domains`` of them, all queries at once (``urlbl.dns_timeout``
each). Zones are ``[NAME:]zone[=filter][*weight]`` like the DNSBL sites; a
Spamhaus DBL zone's codes become ``URIBL_<NAME>_SPAM``/``_PHISH``/
``_MALWARE``/``_BOTNET``/``_ABUSED_...``; other zones give ``URIBL_<NAME>``.
Local lists (``NAME=path[*weight]``, one domain per line, ``#`` comments)
give ``URIBL_<NAME>`` when a host or any of its parent domains is listed.
One symbol per list hit, the domains in its detail.

Error answers (127.0.1.255 and 127.255.255.x: "refused", "query over a
public resolver", "typo") are never counted; they are logged. Failure mode:
DNS timeouts are no evidence (logged at debug); no resolver: local lists only.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar
from urllib.parse import unquote

from mailmoat import eager
from mailmoat.checks import psl
from mailmoat.checks.auth_results import lookup
from mailmoat.checks.base import Check, Services
from mailmoat.checks.psl import registered_domain
from mailmoat.checks.spec import CheckSpec, FamilySpec
from mailmoat.core.symbols import Evidence, Stage
from mailmoat.core.transaction import Transaction
from mailmoat.dns.base import Resolver

log = logging.getLogger("mailmoat.checks.urlbl")

SPEC = CheckSpec(
    name="urlbl",
    stages=(Stage.DATA,),
    summary="Domains found in the message against URL/domain blocklists and local lists.",
    families=(
        FamilySpec(
            "URIBL_",
            "URIBL_<LIST>[_<CODE>]",
            "A domain found in the message is listed on the domain list LIST of urlbl.zones "
            "or urlbl.local_lists (CODE: a Spamhaus DBL category; score: the list's weight).",
            "reputation",
        ),
    ),
)

_SITE = re.compile(
    r"^(?:(?P<name>[A-Za-z0-9_]+):)?(?P<zone>[A-Za-z0-9.\-_]+)"
    r"(?:=(?P<filter>[0-9.\[\];]+))?(?:\*(?P<weight>-?[0-9.]+))?$"
)
_NESTED = re.compile(r"(?:https?|hxxps?)(?::|%3a)(?:/|%2f){2}([^/?#&\s%\"'<>]+)", re.I)
_HOST = re.compile(r"^[a-z0-9\-_\u00a1-\uffff]+(?:\.[a-z0-9\-_\u00a1-\uffff]+)+$")
_IPV4 = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")

DBL_CODES: dict[int, str] = {
    2: "SPAM",
    4: "PHISH",
    5: "MALWARE",
    6: "BOTNET",
    102: "ABUSED_SPAM",
    103: "ABUSED_REDIRECTOR",
    104: "ABUSED_PHISH",
    105: "ABUSED_MALWARE",
    106: "ABUSED_BOTNET",
}


class UrlblConfigError(ValueError):
    """A zone or local list entry that cannot be used, named."""


@dataclass(frozen=True)
class Zone:
    name: str
    zone: str
    filter: tuple[frozenset[int], ...] | None
    weight: float

    @property
    def is_dbl(self) -> bool:
        return "dbl" in self.zone.split(".") or self.name.startswith("DBL")

    def matches(self, address: str) -> bool:
        if self.filter is None:
            return address.startswith("127.")
        try:
            octets = [int(o) for o in address.split(".")]
        except ValueError:
            return False
        return len(octets) == 4 and all(o in f for o, f in zip(octets, self.filter, strict=True))


def _octet(text: str, spec: str) -> frozenset[int]:
    if not text.startswith("["):
        if not text.isdigit():
            raise UrlblConfigError(f"urlbl zone {spec!r}: bad octet {text!r}")
        return frozenset({int(text)})
    values: set[int] = set()
    for part in text.strip("[]").split(";"):
        low, _, high = part.partition("..")
        if not low.isdigit() or (high and not high.isdigit()):
            raise UrlblConfigError(f"urlbl zone {spec!r}: bad octet range {part!r}")
        values.update(range(int(low), int(high or low) + 1))
    return frozenset(values)


def parse_zone(spec: str) -> Zone:
    match = _SITE.match(spec.strip())
    if match is None or "." not in match["zone"]:
        raise UrlblConfigError(f"urlbl zone {spec!r}: expected [NAME:]zone[=filter][*weight]")
    zone = match["zone"].lower().strip(".")
    octets = re.findall(r"\[[^\]]*\]|[^.\[\]]+", match["filter"] or "")
    if match["filter"] and len(octets) != 4:
        raise UrlblConfigError(f"urlbl zone {spec!r}: a filter has four octets")
    name = match["name"] or zone.split(".")[0]
    weight = float(match["weight"]) if match["weight"] else 3.0
    parsed = tuple(_octet(o, spec) for o in octets) if match["filter"] else None
    return Zone(name.upper(), zone, parsed, weight)


def load_local_list(spec: str) -> tuple[str, frozenset[str], float]:
    """``NAME=path[*weight]`` -> (name, domains, weight); UrlblConfigError if unusable."""
    name, eq, rest = spec.partition("=")
    path, star, weight_text = rest.rpartition("*")
    if not star or not re.fullmatch(r"-?[0-9.]+", weight_text):
        path, weight_text = rest, "3.0"
    if not eq or not re.fullmatch(r"[A-Za-z0-9_]+", name) or not path:
        raise UrlblConfigError(f"urlbl local list {spec!r}: expected NAME=path[*weight]")
    try:
        lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise UrlblConfigError(f"urlbl local list {spec!r}: {exc}") from exc
    domains = {ln.split("#", 1)[0].strip().lower().rstrip(".") for ln in lines}
    domains.discard("")
    return name.upper(), frozenset(domains), float(weight_text)


def message_hosts(urls: list[str], domains: list[str]) -> list[str]:
    """Host names in order of first appearance, redirect targets included."""
    hosts: dict[str, None] = {}
    for host in domains:
        hosts.setdefault(host.lower().rstrip("."), None)
    for url in urls:
        _, _, rest = url.partition("://")
        host, _, tail = rest.partition("/")
        hosts.setdefault(host.rsplit("@", 1)[-1].split(":", 1)[0].lower(), None)
        if tail and ("http" in tail.lower() or "hxxp" in tail.lower()):
            for text in (tail, unquote(tail), unquote(unquote(tail))):
                for match in _NESTED.finditer(text):
                    hosts.setdefault(match.group(1).split(":", 1)[0].lower().rstrip("."), None)
    return [h for h in hosts if h and _HOST.match(h) and not _IPV4.match(h)]


def _ascii(domain: str) -> str:
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        return ""


class UrlblCheck(Check):
    name: ClassVar[str] = "urlbl"
    stage: ClassVar[str] = Stage.DATA

    def __init__(
        self,
        resolver: Resolver | None,
        zones: list[Zone],
        local_lists: list[tuple[str, frozenset[str], float]],
        timeout: float,
        max_domains: int,
        skip: frozenset[str],
    ) -> None:
        self.resolver = resolver
        self.zones = zones if resolver is not None else []
        self.local_lists = local_lists
        self.timeout = timeout
        self.max_domains = max_domains
        self.skip = skip

    async def run(self, tx: Transaction, evidence: Evidence) -> None:
        message = tx.message
        hosts = message_hosts(list(message.urls), list(message.domains))
        registered: dict[str, None] = {}
        for host in hosts:
            domain = registered_domain(host)
            if domain and domain not in self.skip:
                registered.setdefault(domain, None)
        domains = list(registered)[: self.max_domains]
        hits: dict[str, tuple[float, list[str]]] = {}
        for name, listed, weight in self.local_lists:
            for host in hosts:
                labels = host.split(".")
                if any(".".join(labels[i:]) in listed for i in range(len(labels) - 1)):
                    hits.setdefault(f"URIBL_{name}", (weight, []))[1].append(host)
        if self.zones and domains:
            await self._query(domains, hits)
        for symbol, (weight, found) in hits.items():
            SPEC.add(evidence, symbol, ",".join(dict.fromkeys(found))[:160], score=weight)

    async def _query(self, domains: list[str], hits: dict[str, tuple[float, list[str]]]) -> None:
        assert self.resolver is not None
        jobs = [
            (zone, domain, f"{ascii_name}.{zone.zone}")
            for domain in domains
            if (ascii_name := _ascii(domain))
            for zone in self.zones
        ]
        answers = await eager.gather(
            *(lookup(self.resolver, qname, "A", self.timeout) for _, _, qname in jobs)
        )
        for (zone, domain, qname), answer in zip(jobs, answers, strict=True):
            if answer.failed:
                log.debug("urlbl query=%s failed: %s", qname, answer.status)
                continue
            for address in answer.records:
                if address == "127.0.1.255" or address.startswith("127.255.255."):
                    log.warning("urlbl zone=%s error answer %s for %s", zone.zone, address, qname)
                    continue
                if not zone.matches(address):
                    continue
                symbol = f"URIBL_{zone.name}"
                if zone.is_dbl:
                    code = int(address.rsplit(".", 1)[1])
                    symbol += "_" + DBL_CODES.get(code, "LISTED")
                hits.setdefault(symbol, (zone.weight, []))[1].append(domain)


def build(services: Services) -> list[Check]:
    config = services.config.urlbl
    zones = [parse_zone(spec) for spec in config.zones]
    local_lists = [load_local_list(spec) for spec in config.local_lists]
    if not local_lists and (not zones or services.resolver is None):
        return []
    skip = frozenset(d.lower().rstrip(".") for d in config.skip_domains)
    psl.load()
    return [
        UrlblCheck(
            services.resolver, zones, local_lists, config.dns_timeout, config.max_domains, skip
        )
    ]
