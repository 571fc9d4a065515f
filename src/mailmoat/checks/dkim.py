"""DKIM (RFC 6376) and ARC (RFC 8617) verification (data stage).

Contract: verifies every DKIM-Signature field (up to
``auth.dkim_max_signatures``), rsa-sha256/rsa-sha1 and ed25519-sha256, and
the ARC chain. Symbols: ``DKIM_VALID`` (at least one signature passes),
``DKIM_INVALID`` (a signature fails), ``DKIM_NONE`` (unsigned),
``DKIM_TEMPFAIL`` (key lookup failed), ``DKIM_PERMERROR`` (broken signature
or key), ``DKIM_PARTIAL_BODY`` (an ``l=`` tag leaves part of the body
unsigned), ``DKIM_UNSUPPORTED`` (ed25519 without PyNaCl), ``DKIM_TOO_MANY``,
``ARC_PASS`` / ``ARC_FAIL`` / ``ARC_NONE``. Per-signature results go to
``tx.dkim_results`` (``header.d``, ``header.s``, ``header.i``,
``header.b``), the chain's to ``tx.arc_results``.

The ``l=`` policy: a signature whose body length leaves content unsigned
proves nothing about that content, so it is reported ``policy`` (not
``pass``) and never counts for DMARC.

How: the public keys of every signature and seal are fetched first,
concurrently, through our resolver (``auth.dns_timeout`` per query); dkimpy
then verifies synchronously from those answers. Failure mode: a key lookup
that times out makes that signature ``temperror`` (score 0); a message
dkimpy cannot parse gives ``DKIM_PERMERROR``; no resolver: not built.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any, ClassVar

import dkim
from dkim.canonicalization import CanonicalizationPolicy

from mailmoat import eager
from mailmoat.checks.auth_results import AuthResult, lookup
from mailmoat.checks.base import Check, Services
from mailmoat.checks.spec import CheckSpec, SymbolSpec
from mailmoat.core.symbols import Evidence, Stage
from mailmoat.core.transaction import Transaction
from mailmoat.dns.base import DnsAnswer, Resolver

log = logging.getLogger("mailmoat.checks.dkim")

# dkimpy logs every failure at ERROR; keep that out of our logs.
_quiet = logging.getLogger("mailmoat.checks.dkim.dkimpy")
_quiet.setLevel(logging.CRITICAL)
_quiet.propagate = False

SIGNATURE_FIELDS = ("dkim-signature",)
ARC_FIELDS = ("arc-seal", "arc-message-signature")
_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9_.-]{0,250})$")

SPEC = CheckSpec(
    name="dkim",
    stages=(Stage.DATA,),
    summary="DKIM signatures and the ARC chain.",
    symbols=tuple(
        SymbolSpec(name, score, text, "authentication")
        for name, score, text in (
            ("DKIM_VALID", -0.5, "At least one DKIM signature of the message verifies."),
            ("DKIM_INVALID", 1.0, "A DKIM signature does not verify: the message was changed."),
            ("DKIM_NONE", 0.0, "The message carries no DKIM signature."),
            ("DKIM_TEMPFAIL", 0.0, "A DKIM key could not be fetched (DNS failure)."),
            ("DKIM_PERMERROR", 0.5, "A DKIM signature or its key is broken."),
            (
                "DKIM_PARTIAL_BODY",
                1.5,
                "A DKIM signature's l= tag leaves part of the body unsigned.",
            ),
            ("DKIM_UNSUPPORTED", 0.0, "A DKIM signature uses an algorithm not supported here."),
            (
                "DKIM_TOO_MANY",
                0.5,
                "More DKIM signatures than auth.dkim_max_signatures; the rest were not verified.",
            ),
            ("ARC_PASS", -0.2, "The message's ARC chain verifies."),
            ("ARC_FAIL", 0.5, "The message's ARC chain is broken."),
            ("ARC_NONE", 0.0, "The message carries no ARC chain."),
        )
    ),
)
_SYMBOL = {
    "pass": "DKIM_VALID",
    "fail": "DKIM_INVALID",
    "temperror": "DKIM_TEMPFAIL",
    "permerror": "DKIM_PERMERROR",
    "policy": "DKIM_PARTIAL_BODY",
    "neutral": "DKIM_UNSUPPORTED",
}


def tags(value: str) -> dict[str, str]:
    """A tag=value list, leniently: whitespace dropped, last tag wins."""
    found: dict[str, str] = {}
    for part in value.split(";"):
        key, eq, val = part.partition("=")
        if eq:
            found[key.strip().lower()] = re.sub(r"\s+", "", val)
    return found


def key_name(sig: dict[str, str]) -> str:
    """``selector._domainkey.domain`` or "" when the tags cannot name a key."""
    selector, domain = sig.get("s", "").lower(), sig.get("d", "").lower().rstrip(".")
    name = f"{selector}._domainkey.{domain}"
    return name if selector and domain and _NAME.match(name) and len(name) < 254 else ""


class DkimCheck(Check):
    name: ClassVar[str] = "dkim"
    stage: ClassVar[str] = Stage.DATA

    def __init__(
        self, resolver: Resolver, timeout: float, max_signatures: int, min_key_bits: int
    ) -> None:
        self.resolver = resolver
        self.timeout = timeout
        self.max_signatures = max_signatures
        self.min_key_bits = min_key_bits

    async def run(self, tx: Transaction, evidence: Evidence) -> None:
        fields = tx.fields_named(*SIGNATURE_FIELDS, *ARC_FIELDS)
        if not fields:  # most mail: no signature, no chain, nothing to look up
            tx.dkim_results = []
            SPEC.add(evidence, "DKIM_NONE")
            SPEC.add(evidence, "ARC_NONE")
            return
        signatures = [tags(v) for n, v in fields if n.lower() in SIGNATURE_FIELDS]
        arc = [tags(v) for n, v in fields if n.lower() in ARC_FIELDS]
        if len(signatures) > self.max_signatures:
            SPEC.add(evidence, "DKIM_TOO_MANY", str(len(signatures)))
        signatures = signatures[: self.max_signatures]
        wanted = {key_name(s) for s in [*signatures, *arc[: 2 * self.max_signatures]]}
        wanted.discard("")
        names = sorted(wanted)
        answers = dict(
            zip(
                names,
                await eager.gather(*(lookup(self.resolver, n, "TXT", self.timeout) for n in names)),
                strict=True,
            )
        )
        results = self._verify_all(tx.data, signatures, answers)
        tx.dkim_results = results
        if not signatures:
            SPEC.add(evidence, "DKIM_NONE")
        by_symbol: dict[str, list[str]] = {}
        for result in results:
            symbol = _SYMBOL.get(result.result, "DKIM_PERMERROR")
            by_symbol.setdefault(symbol, []).append(result.prop("header.d") or "?")
        for symbol, domains in by_symbol.items():
            SPEC.add(evidence, symbol, ",".join(domains)[:120])
        if arc:
            arc_result = self._verify_arc(tx.data, answers)
            tx.arc_results = [arc_result]
            symbol = "ARC_PASS" if arc_result.result == "pass" else "ARC_FAIL"
            SPEC.add(evidence, symbol, arc_result.reason[:80])
        else:
            SPEC.add(evidence, "ARC_NONE")

    def _verify_all(
        self, message: bytes, signatures: list[dict[str, str]], answers: dict[str, DnsAnswer]
    ) -> list[AuthResult]:
        if not signatures:
            return []
        dnsfunc = _dnsfunc(answers)
        try:
            verifier = dkim.DKIM(message, logger=_quiet, minkey=self.min_key_bits)
        except Exception as exc:  # dkimpy's parser on hostile input
            log.info("dkim: message not parseable: %s", exc)
            return [_result(s, "permerror", f"unparseable message: {exc}") for s in signatures]
        return [
            self._verify_one(verifier, idx, sig, answers, dnsfunc)
            for idx, sig in enumerate(signatures)
        ]

    def _verify_one(
        self,
        verifier: dkim.DKIM,
        idx: int,
        sig: dict[str, str],
        answers: dict[str, DnsAnswer],
        dnsfunc: Callable[..., bytes | None],
    ) -> AuthResult:
        name = key_name(sig)
        if not name:
            return _result(sig, "permerror", "no usable d= or s= tag")
        answer = answers.get(name, DnsAnswer("servfail"))
        if answer.failed:
            return _result(sig, "temperror", f"key lookup {answer.status}")
        if not answer.ok or not answer.records:
            return _result(sig, "permerror", "no key")
        try:
            valid = bool(verifier.verify(idx=idx, dnsfunc=dnsfunc))
        except dkim.NaClNotFoundError:
            return _result(sig, "neutral", "ed25519 not supported here")
        except dkim.ValidationError as exc:
            return _result(sig, "fail", str(exc).split("(")[0].strip()[:100])
        except Exception as exc:  # dkimpy's other errors: format, key, parameters
            return _result(sig, "permerror", f"{type(exc).__name__}: {exc}"[:100])
        if not valid:
            return _result(sig, "fail", "signature did not verify")
        unsigned = _unsigned_bytes(verifier, sig)
        if unsigned:
            return _result(sig, "policy", f"l= leaves {unsigned} body bytes unsigned")
        return _result(sig, "pass")

    def _verify_arc(self, message: bytes, answers: dict[str, DnsAnswer]) -> AuthResult:
        try:
            verifier = dkim.ARC(message, logger=_quiet, minkey=self.min_key_bits)
            cv, _details, reason = verifier.verify(dnsfunc=_dnsfunc(answers))
        except Exception as exc:
            return AuthResult("arc", "fail", f"{type(exc).__name__}: {exc}"[:100])
        text = cv.decode() if isinstance(cv, bytes) else "fail"
        return AuthResult("arc", text if text in ("pass", "none") else "fail", str(reason))


def _dnsfunc(answers: dict[str, DnsAnswer]) -> Callable[..., bytes | None]:
    def get(name: Any, timeout: float = 5) -> bytes | None:
        key = (name.decode("ascii", "replace") if isinstance(name, bytes) else str(name)).lower()
        answer = answers.get(key.rstrip("."))
        if answer is None or answer.failed:
            raise dkim.DnsTimeoutError(f"no answer for {key}")
        if not answer.records:
            return None
        return answer.records[0].encode("utf-8", "replace")

    return get


def _unsigned_bytes(verifier: dkim.DKIM, sig: dict[str, str]) -> int:
    if "l" not in sig:
        return 0
    try:
        policy = CanonicalizationPolicy.from_c_value(sig.get("c", "simple/simple").encode())
        total = len(policy.canonicalize_body(verifier.body))
        return max(0, total - int(sig["l"]))
    except (ValueError, dkim.DKIMException):
        return -1


def _result(sig: dict[str, str], result: str, reason: str = "") -> AuthResult:
    props = (
        ("header.d", sig.get("d", "").lower()),
        ("header.s", sig.get("s", "")),
        ("header.i", sig.get("i", "")),
        ("header.b", sig.get("b", "")[:8]),
    )
    return AuthResult("dkim", result, reason, props)


def build(services: Services) -> list[Check]:
    if services.resolver is None:
        log.info("dkim: no resolver configured, check disabled")
        return []
    auth = services.config.auth
    return [
        DkimCheck(
            services.resolver, auth.dns_timeout, auth.dkim_max_signatures, auth.dkim_min_key_bits
        )
    ]
