"""SPF (RFC 7208) for the MAIL FROM and HELO identities (data stage).

Contract: evaluates the client address against the SPF policy of the MAIL
FROM domain (``postmaster@<helo>`` for the null sender) and, with
``auth.spf_helo``, of the HELO name. Symbols: ``SPF_PASS``, ``SPF_FAIL``,
``SPF_SOFTFAIL``, ``SPF_NEUTRAL``, ``SPF_NONE``, ``SPF_TEMPERROR``,
``SPF_PERMERROR`` and the same with ``SPF_HELO_`` for the HELO identity.
Results go to ``tx.spf_results`` for DMARC and Authentication-Results.

How: pyspf does the policy evaluation (macros, mechanisms, the RFC's lookup,
void-lookup and recursion limits) but is synchronous. Instead of a thread we
*replay* it: pyspf runs against the answers fetched so far; when it needs one
it does not have, it stops, the answer is fetched through our asynchronous
resolver (``auth.dns_timeout`` per query) and the evaluation starts again.
Evaluation is deterministic given the answers, so the last run is the real
one. At most ``MAX_QUERIES`` distinct queries are made (pyspf's own limits
stop well before that); a giant include chain or loop is a permerror.

Failure mode: DNS timeouts and server failures are ``temperror`` (score 0);
no resolver configured: the check is not built.
"""

from __future__ import annotations

import contextvars
import functools
import ipaddress
import logging
import re
import time
from collections.abc import Callable
from typing import Any, ClassVar

import spf

from mailmoat import eager
from mailmoat.checks.auth_results import AuthResult, lookup
from mailmoat.checks.base import Check, Services
from mailmoat.checks.spec import CheckSpec, SymbolSpec
from mailmoat.core.symbols import Evidence, Stage
from mailmoat.core.transaction import Transaction
from mailmoat.dns.base import DnsAnswer, Resolver

log = logging.getLogger("mailmoat.checks.spf")

MAX_QUERIES = 40

_RESULTS: dict[str, tuple[float, float, str]] = {
    # result: (score for MAIL FROM, score for HELO, what it means)
    "pass": (-0.5, 0.0, "the client is authorized to send for"),
    "fail": (2.5, 1.0, "the policy says the client must not send for"),
    "softfail": (1.0, 0.5, "the policy says the client is probably not allowed to send for"),
    "neutral": (0.2, 0.0, "the policy makes no statement about the client for"),
    "none": (0.3, 0.0, "there is no SPF policy for"),
    "temperror": (0.0, 0.0, "a DNS error kept SPF from evaluating"),
    "permerror": (0.5, 0.2, "the SPF policy is broken for"),
}

SPEC = CheckSpec(
    name="spf",
    stages=(Stage.DATA,),
    summary="SPF of the MAIL FROM and HELO identities.",
    symbols=tuple(
        SymbolSpec(
            f"SPF_{result.upper()}",
            mail,
            f"SPF {result}: {text} the envelope sender's domain.",
            "authentication",
        )
        for result, (mail, _helo, text) in _RESULTS.items()
    )
    + tuple(
        SymbolSpec(
            f"SPF_HELO_{result.upper()}",
            helo,
            f"SPF {result} for the HELO name: {text} that name.",
            "authentication",
        )
        for result, (_mail, helo, text) in _RESULTS.items()
    ),
)

Answers = dict[tuple[str, str], DnsAnswer]
_ANSWERS: contextvars.ContextVar[Answers | None] = contextvars.ContextVar(
    "mailmoat_spf_answers", default=None
)


class _NeedLookup(Exception):  # a control-flow signal, not an error
    def __init__(self, name: str, qtype: str) -> None:
        super().__init__(name, qtype)
        self.key = (name, qtype)


def _pyspf_record(qtype: str, record: str) -> Any:
    if qtype == "MX":
        parts = record.split()
        if len(parts) == 2 and parts[0].isdigit():
            return (int(parts[0]), parts[1].rstrip("."))
        return (0, record.rstrip("."))
    if qtype in ("TXT", "SPF"):
        return (record.encode("utf-8", "replace"),)
    if qtype == "PTR":
        return record.rstrip(".")
    return record


_ORIGINAL_LOOKUP: Callable[..., Any] = spf.DNSLookup


def _replay_lookup(name: str, qtype: str, strict: Any = True, timeout: Any = 20) -> Any:
    answers = _ANSWERS.get()
    if answers is None:  # someone else using pyspf in this process
        return _ORIGINAL_LOOKUP(name, qtype, strict, timeout)
    if qtype == "SPF":  # RR type 99 is obsolete (RFC 7208 section 3.1)
        return []
    key = (name.lower().rstrip("."), qtype)
    answer = answers.get(key)
    if answer is None:
        raise _NeedLookup(*key)
    if answer.failed:
        raise spf.TempError(f"DNS {answer.status} for {key[0]} {qtype}")
    return [((key[0], qtype), _pyspf_record(qtype, r)) for r in answer.records]


spf.DNSLookup = _replay_lookup


async def evaluate(
    resolver: Resolver, ip: str, sender: str, helo: str, timeout: float
) -> tuple[str, str]:
    """(result, explanation) of one SPF evaluation; never raises."""
    answers: Answers = {}
    # Every evaluation starts with the TXT lookup of the domain: fetch it
    # before the first run instead of discovering it by one.
    domain = (sender.rpartition("@")[2] if sender else helo).lower().rstrip(".")
    if domain and "." in domain and len(domain) < 254:
        answers[(domain, "TXT")] = await lookup(resolver, domain, "TXT", timeout)
    for _ in range(MAX_QUERIES + 1):
        need = _run(answers, ip, sender, helo, timeout)
        if isinstance(need, tuple):
            return need
        answers[need.key] = await lookup(resolver, need.key[0], need.key[1], timeout)
    log.info("spf sender=%s ip=%s: more than %d DNS queries", sender, ip, MAX_QUERIES)
    return "permerror", f"more than {MAX_QUERIES} DNS queries"


# Dot-separated labels of 1 to 63 characters (any but the dot): the names
# pyspf looks up at all (``query.dns_spf``).
_LABELS = re.compile(r"[^.]{1,63}(?:\.[^.]{1,63})*")


def _pyspf_domain(sender: str, helo: str) -> str:
    """The domain pyspf evaluates for ``s=sender, h=helo`` (its
    ``split_email``: after the first "@"; the HELO name for the null sender)."""
    if not sender:
        return helo
    return sender.split("@", 1)[1] if "@" in sender else sender


def _without_policy(answers: Answers, sender: str, helo: str) -> bool:
    """True when pyspf, given ``answers``, would find no SPF record and so
    return ``none`` with an empty explanation, asking nothing more: the
    domain is not a valid name (pyspf looks nothing up), or its TXT answer
    is here, not a failure, and holds no ``v=spf1`` record (``spf.RE_SPF``
    on the bytes pyspf would see). Anything else (a policy, a failure, an
    answer not fetched yet) is left to pyspf itself."""
    domain = _pyspf_domain(sender, helo)
    if not _LABELS.fullmatch(domain):
        return True
    answer = answers.get((domain.lower(), "TXT"))
    if answer is None or answer.failed:
        return False
    records = answer.records
    return not records or not any(spf.RE_SPF.match(_pyspf_record("TXT", r)[0]) for r in records)


def _run(answers: Answers, ip: str, sender: str, helo: str, timeout: float) -> Any:
    """pyspf's (result, explanation) given ``answers``, or the ``_NeedLookup``
    naming the answer it needs next. Most domains publish no policy: that
    case is read from the answers directly (``_without_policy``), without
    building a pyspf query (the same outcome, a fifth of the time)."""
    if _without_policy(answers, sender, helo):
        return "none", ""
    return _pyspf_run(answers, ip, sender, helo, timeout)


def _pyspf_run(answers: Answers, ip: str, sender: str, helo: str, timeout: float) -> Any:
    token = _ANSWERS.set(answers)
    try:
        query = spf.query(i=ip, s=sender, h=helo, timeout=timeout, querytime=0)
        result, _code, explanation = query.check()
        return str(result), str(explanation)
    except _NeedLookup as need:
        return need
    except (ValueError, IndexError, TypeError, UnicodeError, RecursionError) as exc:
        # pyspf on hostile input (odd addresses, names, records).
        return "permerror", f"{type(exc).__name__}: {exc}"
    finally:
        _ANSWERS.reset(token)


@functools.lru_cache(maxsize=4096)
def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _helo_domain(helo: str) -> str:
    name = helo.strip().rstrip(".").lower()
    if not name or name.startswith("[") or _is_address(name) or "." not in name:
        return ""
    return name


RESULT_TTL = 60.0  # the resolver's minimum TTL (dns.min_ttl default)
RESULT_CACHE_SIZE = 10_000


class SpfCheck(Check):
    name: ClassVar[str] = "spf"
    stage: ClassVar[str] = Stage.DATA

    def __init__(self, resolver: Resolver, timeout: float, check_helo: bool) -> None:
        self.resolver = resolver
        self.timeout = timeout
        self.check_helo = check_helo
        # (ip, sender, helo) -> (expires, outcome). The resolver keeps every
        # answer at least RESULT_TTL seconds, so within that time a second
        # evaluation would read the same records: reuse its outcome instead
        # (a campaign repeats ip and sender). Temporary errors are not kept.
        self._results: dict[tuple[str, str, str], tuple[float, tuple[str, str]]] = {}

    def _cached(self, ip: str, sender: str, helo: str) -> tuple[str, str] | None:
        cached = self._results.get((ip, sender.lower(), helo.lower()))
        return cached[1] if cached is not None and cached[0] > time.monotonic() else None

    async def _evaluate(self, ip: str, sender: str, helo: str) -> tuple[str, str]:
        outcome = await evaluate(self.resolver, ip, sender, helo, self.timeout)
        if outcome[0] != "temperror":
            if len(self._results) >= RESULT_CACHE_SIZE:
                self._results.pop(next(iter(self._results)))
            self._results[(ip, sender.lower(), helo.lower())] = (
                time.monotonic() + RESULT_TTL,
                outcome,
            )
        return outcome

    async def _outcomes(
        self, ip: str, helo: str, senders: list[str | None]
    ) -> list[tuple[str, str]]:
        """Per sender ("" is the HELO identity, None: not evaluated, "none"):
        its outcome, remembered ones without waiting, the rest at once."""
        outcomes = [
            ("none", "") if sender is None else self._cached(ip, sender, helo) for sender in senders
        ]
        missing = [n for n, outcome in enumerate(outcomes) if outcome is None]
        if missing:
            jobs = [self._evaluate(ip, senders[n] or "", helo) for n in missing]
            for n, outcome in zip(missing, await eager.gather(*jobs), strict=True):
                outcomes[n] = outcome
        return [o or ("none", "") for o in outcomes]

    async def run(self, tx: Transaction, evidence: Evidence) -> None:
        ip = tx.session.client_ip
        if not _is_address(ip):
            return
        helo = _helo_domain(tx.session.helo)
        sender = tx.mail_from.strip().strip("<>")
        results: list[AuthResult] = []
        if not sender and not helo:
            return
        # Both identities at once; the null sender's MAIL FROM identity is
        # postmaster@<helo>, which is the HELO evaluation itself.
        want_helo = bool(helo) and (self.check_helo or not sender)
        no_domain = bool(sender) and "@" not in sender
        (helo_result, helo_why), (result, why) = await self._outcomes(
            ip, helo, ["" if want_helo else None, sender if sender and not no_domain else None]
        )
        if no_domain:
            why = "no domain in MAIL FROM"
        if helo and self.check_helo:
            SPEC.add(evidence, f"SPF_HELO_{helo_result.upper()}", helo)
            results.append(AuthResult("spf", helo_result, helo_why[:100], (("smtp.helo", helo),)))
        if not sender:
            sender = f"postmaster@{helo}"
            result, why = helo_result, helo_why
        SPEC.add(evidence, f"SPF_{result.upper()}", sender[:80])
        results.insert(0, AuthResult("spf", result, why[:100], (("smtp.mailfrom", sender),)))
        tx.spf_results = results


def build(services: Services) -> list[Check]:
    if services.resolver is None:
        log.info("spf: no resolver configured, check disabled")
        return []
    auth = services.config.auth
    return [SpfCheck(services.resolver, auth.dns_timeout, auth.spf_helo)]
