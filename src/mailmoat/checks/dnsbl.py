"""DNS block and allow lists with postscreen's semantics (connect -> helo).

Contract: for every client, all configured sites are queried concurrently
from the moment the client connects (``connect`` stage; the lookups run
during the pregreet delay), and the answers are weighed at the ``helo``
stage, so the evidence is on the session before MAIL and RCPT.

A site is ``[NAME:]zone[=filter][*weight]`` (postscreen_dnsbl_sites):
``zen.spamhaus.org=127.0.0.[2..11]*3``. The filter matches the A records
of the answer octet by octet; an octet is a number or a bracketed list of
numbers and ``lo..hi`` ranges separated by ``;`` or ``,``. No filter: any
answer counts. No weight: 1. A negative weight marks an allowlist (DNSWL).
IPv4 clients are queried as reversed octets, IPv6 clients as reversed
nibbles (RFC 5782).

Symbols: ``DNSBL_<NAME>`` per listing site (default score = its weight;
NAME is the explicit name or the zone without its top-level label, e.g.
``DNSBL_ZEN_SPAMHAUS``), ``DNSBL_ERROR_CODE`` (score 0) when a site answers
with 127.255.255.x (Spamhaus's "query refused / open resolver" codes) or
127.0.0.255 (DNSWL's), which are never listings and are logged at WARNING, ``DNSBL_UNAVAILABLE``
(score 0) when a site times out or fails: no evidence, no refusal.

Policy: the weights of listing sites are summed; at or above
``dnsbl.threshold`` the client gets a forced REJECT (``554 5.7.1``,
reason ``dnsbl``) that applies at its first RCPT (the log shows the
envelope), naming the lists. A negative total marks the session as
DNSWL-listed (``session.dnswl``): greylisting skips it. Those two typed
fields (``session.dnsbl_weight``, ``session.dnswl``) are what other parts
read; the lookups' task and a done flag are this check's private memo in
``session.notes`` (``dnsbl_task``, ``dnsbl_done``), from connect to helo.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from typing import ClassVar

from mailmoat import eager
from mailmoat.checks.base import Check, Services, start_session_task
from mailmoat.checks.spec import CheckSpec, FamilySpec, SymbolSpec
from mailmoat.core.symbols import Action, Evidence, Forced, Precedence, Stage
from mailmoat.core.transaction import Session, Transaction
from mailmoat.dns import DnsAnswer, Resolver, reverse_name

log = logging.getLogger("mailmoat.checks.dnsbl")

SPEC = CheckSpec(
    name="dnsbl",
    stages=(Stage.CONNECT, Stage.HELO),
    summary="DNS block and allow lists of the client address (postscreen's weights).",
    # After the lists of the same stage: no queries for an allowlisted client.
    requires=("lists",),
    symbols=(
        SymbolSpec(
            "DNSBL_UNAVAILABLE",
            0.0,
            "A DNS list did not answer in time or failed: no evidence.",
            "reputation",
        ),
        SymbolSpec(
            "DNSBL_ERROR_CODE",
            0.0,
            "A DNS list answered with an error code (our queries are refused), not a listing.",
            "reputation",
        ),
    ),
    families=(
        FamilySpec(
            "DNSBL_",
            "DNSBL_<SITE>",
            "The client address is listed on the DNS list SITE of dnsbl.sites "
            "(score: the site's weight; negative for an allowlist).",
            "reputation",
        ),
    ),
)

_TASK = "dnsbl_task"
_DONE = "dnsbl_done"


class SiteError(ValueError):
    """A ``dnsbl.sites`` entry that cannot be parsed."""


@dataclass(frozen=True)
class Site:
    name: str
    zone: str
    # One set of allowed values per octet; None: any answer matches.
    filter: tuple[frozenset[int], ...] | None
    weight: float
    spec: str

    def matches(self, address: str) -> bool:
        if self.filter is None:
            return True
        octets = address.split(".")
        if len(octets) != 4 or not all(o.isdigit() for o in octets):
            return False
        return all(int(o) in allowed for o, allowed in zip(octets, self.filter, strict=True))


_SITE = re.compile(
    r"^(?:(?P<name>[A-Za-z0-9_]+):)?(?P<zone>[A-Za-z0-9.\-_]+?)"
    r"(?:=(?P<filter>[0-9.\[\];,]+))?(?:\*(?P<weight>-?[0-9]+(?:\.[0-9]+)?))?$"
)


def _octet(text: str, spec: str) -> frozenset[int]:
    if text.startswith("[") and text.endswith("]"):
        values: set[int] = set()
        for item in re.split(r"[;,]", text[1:-1]):
            low, sep, high = item.partition("..")
            if not low.isdigit() or (sep and not high.isdigit()):
                raise SiteError(f"dnsbl site {spec!r}: bad filter item {item!r}")
            values.update(range(int(low), int(high if sep else low) + 1))
    elif text.isdigit():
        values = {int(text)}
    else:
        raise SiteError(f"dnsbl site {spec!r}: bad filter octet {text!r}")
    if not values or max(values) > 255:
        raise SiteError(f"dnsbl site {spec!r}: filter octet {text!r} out of 0..255")
    return frozenset(values)


def parse_site(spec: str) -> Site:
    """Parse one ``dnsbl.sites`` entry; SiteError names it when malformed."""
    match = _SITE.match(spec.strip())
    if match is None:
        raise SiteError(f"dnsbl site {spec!r}: expected [NAME:]zone[=filter][*weight]")
    zone = match["zone"].lower().strip(".")
    if "." not in zone:
        raise SiteError(f"dnsbl site {spec!r}: zone {zone!r} is not a domain")
    octet_specs = re.findall(r"\[[^\]]*\]|[^.\[\]]+", match["filter"] or "")
    if match["filter"] and len(octet_specs) != 4:
        raise SiteError(f"dnsbl site {spec!r}: a filter has four octets")
    octets = tuple(_octet(o, spec) for o in octet_specs) if match["filter"] else None
    name = match["name"] or "_".join(zone.split(".")[:-1])
    name = re.sub(r"[^A-Za-z0-9]+", "_", name).upper()
    weight = float(match["weight"]) if match["weight"] else 1.0
    return Site(name, zone, octets, weight, spec.strip())


def parse_sites(specs: tuple[str, ...]) -> list[Site]:
    """All sites, symbol names made unique (``_2``, ``_3``... for repeats)."""
    sites: list[Site] = []
    seen: dict[str, int] = {}
    for spec in specs:
        site = parse_site(spec)
        seen[site.name] = seen.get(site.name, 0) + 1
        if seen[site.name] > 1:
            site = Site(f"{site.name}_{seen[site.name]}", *_rest(site))
        sites.append(site)
    return sites


def _rest(site: Site) -> tuple[str, tuple[frozenset[int], ...] | None, float, str]:
    return site.zone, site.filter, site.weight, site.spec


def is_error_code(address: str) -> bool:
    """Spamhaus (and others) answer 127.255.255.x for refused/invalid queries,
    DNSWL 127.0.0.255 when it refuses a resolver (over its free volume)."""
    return address.startswith("127.255.255.") or address == "127.0.0.255"


@dataclass(frozen=True)
class SiteResult:
    site: Site
    answer: DnsAnswer


async def query_sites(resolver: Resolver, sites: list[Site], ip: str) -> list[SiteResult]:
    """Ask every site about ``ip`` at once; answers in site order."""
    try:
        names = [reverse_name(ip, site.zone) for site in sites]
    except ValueError:
        return []
    answers = await eager.gather(*(resolver.resolve(name, "A") for name in names))
    return [SiteResult(site, answer) for site, answer in zip(sites, answers, strict=True)]


class DnsblStart(Check):
    """Connect stage: start the lookups in the background; adds no evidence."""

    name: ClassVar[str] = "dnsbl"
    stage: ClassVar[str] = Stage.CONNECT

    def __init__(self, resolver: Resolver, sites: list[Site]) -> None:
        self.resolver = resolver
        self.sites = sites

    async def run(self, tx: Transaction, evidence: Evidence) -> None:
        start_lookups(tx.session, self.resolver, self.sites)


def start_lookups(session: Session, resolver: Resolver, sites: list[Site]) -> None:
    start_session_task(session, _TASK, lambda: query_sites(resolver, sites, session.client_ip))


class DnsblVerdict(Check):
    """Helo stage: weigh the answers (once per session) and decide."""

    name: ClassVar[str] = "dnsbl"
    stage: ClassVar[str] = Stage.HELO

    def __init__(self, resolver: Resolver, sites: list[Site], threshold: float) -> None:
        self.resolver = resolver
        self.sites = sites
        self.threshold = threshold

    async def run(self, tx: Transaction, evidence: Evidence) -> None:
        session = tx.session
        if session.notes.get(_DONE):
            return
        start_lookups(session, self.resolver, self.sites)
        task: asyncio.Task[list[SiteResult]] = session.notes[_TASK]
        results = await asyncio.shield(task)
        session.notes[_DONE] = True
        total = 0.0
        listed: list[str] = []
        for result in results:
            hit = self._weigh(result, session.client_ip, evidence)
            if hit is not None:
                total += hit
                if hit > 0:
                    listed.append(result.site.zone)
        session.dnsbl_weight = total
        if total < 0:
            # The policy: a client on an allowlist with no outweighing block
            # list is trusted enough to skip greylisting.
            session.dnswl = True
        if self.threshold > 0 and total >= self.threshold:
            lists = ", ".join(listed)
            log.info("client=%s dnsbl weight=%g listed in %s", session.client_ip, total, lists)
            evidence.force(
                Forced(
                    Action.REJECT,
                    Precedence.TEST,
                    "dnsbl",
                    554,
                    "5.7.1",
                    f"Service unavailable; client [{session.client_ip}] blocked using {lists}",
                )
            )

    def _weigh(self, result: SiteResult, ip: str, evidence: Evidence) -> float | None:
        """The site's weight when it lists ``ip``, else None; logs the oddities."""
        site, answer = result.site, result.answer
        if answer.failed:
            SPEC.add(evidence, "DNSBL_UNAVAILABLE", f"{site.zone}: {answer.status}")
            return None
        if not answer.ok:
            return None
        errors = [a for a in answer.records if is_error_code(a)]
        if errors:
            log.warning(
                "dnsbl zone=%s answered error code %s for client=%s: not a listing; "
                "the list refuses our queries (public resolver? over quota?)",
                site.zone,
                ",".join(errors),
                ip,
            )
            SPEC.add(evidence, "DNSBL_ERROR_CODE", f"{site.zone}: {','.join(errors)}")
        matching = [a for a in answer.records if not is_error_code(a) and site.matches(a)]
        if not matching:
            return None
        detail = f"{site.zone}: {','.join(matching)}"
        SPEC.add(evidence, f"DNSBL_{site.name}", detail, score=site.weight)
        return site.weight


def build(services: Services) -> list[Check]:
    config = services.config.dnsbl
    if not config.sites or services.resolver is None:
        return []
    sites = parse_sites(config.sites)
    return [
        DnsblStart(services.resolver, sites),
        DnsblVerdict(services.resolver, sites, config.threshold),
    ]
