"""DMARC (RFC 7489) policy evaluation (data stage, after SPF and DKIM).

Contract: finds the policy for the RFC5322.From domain (``_dmarc.<domain>``,
then ``_dmarc.<organizational domain>`` from the offline Public Suffix List),
checks whether an SPF pass (``tx.spf_results``) or a DKIM pass
(``tx.dkim_results``) is aligned with the From domain (relaxed or strict,
``aspf``/``adkim``), and applies ``p`` / ``sp`` / ``pct``. Symbols:
``DMARC_PASS``, ``DMARC_POLICY_REJECT``, ``DMARC_POLICY_QUARANTINE``,
``DMARC_POLICY_NONE`` (a failure under each policy), ``DMARC_NA`` (no
policy), ``DMARC_TEMPERROR``, ``DMARC_PERMERROR`` (several records),
``DMARC_BAD_FROM`` (no single From domain). A failure under p=reject /
p=quarantine is also a forced verdict chosen by ``auth.dmarc_reject_action``
/ ``auth.dmarc_quarantine_action`` ("reject": 550 5.7.1, reason "dmarc";
"quarantine"; "score": symbols only).

Failure mode: DNS failures, or SPF/DKIM results that were temporary errors
with nothing else passing, give ``DMARC_TEMPERROR`` (score 0, no verdict):
a policy is never enforced on incomplete evidence.
"""

from __future__ import annotations

import logging
import random
from typing import ClassVar

from mailmoat.checks import psl
from mailmoat.checks.auth_results import AuthResult, lookup
from mailmoat.checks.base import Check, Services
from mailmoat.checks.psl import registered_domain
from mailmoat.checks.spec import CheckSpec, SymbolSpec
from mailmoat.core.headers import addresses
from mailmoat.core.symbols import Action, Evidence, Forced, Precedence, Stage
from mailmoat.core.transaction import Transaction
from mailmoat.dns.base import Resolver

log = logging.getLogger("mailmoat.checks.dmarc")

SPEC = CheckSpec(
    name="dmarc",
    stages=(Stage.DATA,),
    summary="DMARC policy of the From domain.",
    requires=("spf", "dkim"),
    symbols=tuple(
        SymbolSpec(name, score, text, "authentication")
        for name, score, text in (
            ("DMARC_PASS", -0.5, "SPF or DKIM passed aligned with the From domain (DMARC pass)."),
            ("DMARC_POLICY_REJECT", 4.0, "DMARC failed and the From domain's policy is reject."),
            (
                "DMARC_POLICY_QUARANTINE",
                2.5,
                "DMARC failed and the From domain's policy is quarantine.",
            ),
            ("DMARC_POLICY_NONE", 0.5, "DMARC failed; the From domain's policy is none."),
            ("DMARC_NA", 0.0, "The From domain publishes no DMARC policy."),
            ("DMARC_TEMPERROR", 0.0, "DMARC could not be evaluated (DNS or SPF/DKIM errors)."),
            ("DMARC_PERMERROR", 0.0, "The From domain publishes several DMARC records."),
            ("DMARC_BAD_FROM", 1.0, "The message has no single From domain to check."),
        )
    ),
)


def org_domain(domain: str) -> str:
    """The organizational domain (registered domain) of ``domain``."""
    name = domain.lower().rstrip(".")
    return registered_domain(name) or name


def aligned(identity: str, from_domain: str, mode: str) -> bool:
    identity = identity.lower().rstrip(".")
    if mode == "s":
        return identity == from_domain
    return bool(identity) and org_domain(identity) == org_domain(from_domain)


def parse_record(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for part in text.split(";"):
        key, eq, value = part.partition("=")
        if eq:
            found.setdefault(key.strip().lower(), value.strip())
    return found


def from_domain(fields: tuple[tuple[str, str], ...]) -> str | None:
    """The one From domain; None when there is not exactly one ("" if absent)."""
    values = [v for n, v in fields if n.lower() == "from"]
    if not values:
        return ""
    if len(values) > 1:
        return None
    domains = {a.rpartition("@")[2].strip().lower().rstrip(".") for a in addresses(values[0])}
    domains.discard("")
    if len(domains) != 1:
        return None
    return domains.pop()


class DmarcCheck(Check):
    name: ClassVar[str] = "dmarc"
    stage: ClassVar[str] = Stage.DATA

    def __init__(
        self,
        resolver: Resolver,
        timeout: float,
        reject_action: str,
        quarantine_action: str,
        rng: random.Random | None = None,
    ) -> None:
        self.resolver = resolver
        self.timeout = timeout
        self.actions = {"reject": reject_action, "quarantine": quarantine_action}
        self.rng = rng or random.Random()

    async def run(self, tx: Transaction, evidence: Evidence) -> None:
        domain = from_domain(tx.fields_named("from"))
        if domain is None:
            SPEC.add(evidence, "DMARC_BAD_FROM")
            return
        if not domain or "." not in domain:
            return
        record, policy_domain, status = await self._policy(domain)
        if status != "ok":
            symbol = {"none": "DMARC_NA", "temperror": "DMARC_TEMPERROR"}.get(
                status, "DMARC_PERMERROR"
            )
            SPEC.add(evidence, symbol, domain)
            tx.dmarc_results = [_result(status, domain, "")]
            return
        assert record is not None
        outcome = _evaluate(tx, domain, record)
        policy = record.get("p", "none").lower()
        if policy_domain != domain and "sp" in record:
            policy = record["sp"].lower()
        if policy not in ("none", "quarantine", "reject"):
            policy = "none"
        if outcome != "fail":
            symbol = "DMARC_PASS" if outcome == "pass" else "DMARC_TEMPERROR"
            SPEC.add(evidence, symbol, domain)
            tx.dmarc_results = [_result(outcome, domain, f"p={policy}")]
            return
        applied = self._sampled(policy, record.get("pct", "100"))
        SPEC.add(
            evidence,
            f"DMARC_POLICY_{applied.upper()}",
            f"{domain} p={policy}" + (f" applied={applied}" if applied != policy else ""),
        )
        tx.dmarc_results = [_result("fail", domain, f"p={policy} dis={applied}")]
        action = self.actions.get(applied, "score")
        if action == "reject":
            evidence.force(
                Forced(
                    Action.REJECT,
                    Precedence.TEST,
                    "dmarc",
                    550,
                    "5.7.1",
                    f"Rejected by the DMARC policy of {domain}",
                )
            )
        elif action == "quarantine":
            evidence.force(Forced(Action.QUARANTINE, Precedence.TEST, "dmarc"))

    async def _policy(self, domain: str) -> tuple[dict[str, str] | None, str, str]:
        """(record, domain it was found at, status: ok/none/temperror/permerror)."""
        organizational = org_domain(domain)
        for candidate in dict.fromkeys((domain, organizational)):
            answer = await lookup(self.resolver, f"_dmarc.{candidate}", "TXT", self.timeout)
            if answer.failed:
                return None, candidate, "temperror"
            records = [r for r in answer.records if r.strip().lower().startswith("v=dmarc1")]
            if len(records) > 1:
                return None, candidate, "permerror"
            if records:
                return parse_record(records[0]), candidate, "ok"
        return None, domain, "none"

    def _sampled(self, policy: str, pct_text: str) -> str:
        """RFC 7489 6.6.4: outside the pct sample, the next weaker policy."""
        try:
            pct = min(100, max(0, int(pct_text)))
        except ValueError:
            pct = 100
        if pct >= 100 or self.rng.random() * 100 < pct:
            return policy
        return {"reject": "quarantine", "quarantine": "none"}.get(policy, "none")


def _evaluate(tx: Transaction, domain: str, record: dict[str, str]) -> str:
    """pass / fail / temperror for the authenticated identifiers."""
    aspf = record.get("aspf", "r").lower()[:1]
    adkim = record.get("adkim", "r").lower()[:1]
    spf_results = tx.spf_results
    dkim_results = tx.dkim_results
    temporary = False
    # RFC 7489 3.1.2: the MAIL FROM identity, or HELO when MAIL FROM is null.
    for result in spf_results[:1]:
        identity = result.prop("smtp.mailfrom") or result.prop("smtp.helo")
        spf_domain = identity.rpartition("@")[2]
        if result.result == "pass" and aligned(spf_domain, domain, aspf):
            return "pass"
        temporary |= result.result == "temperror"
    for result in dkim_results:
        if aligned(result.prop("header.d"), domain, adkim):
            if result.result == "pass":
                return "pass"
            temporary |= result.result == "temperror"
    return "temperror" if temporary else "fail"


def _result(result: str, domain: str, reason: str) -> AuthResult:
    return AuthResult("dmarc", result, reason, (("header.from", domain),))


def build(services: Services) -> list[Check]:
    if services.resolver is None:
        log.info("dmarc: no resolver configured, check disabled")
        return []
    auth = services.config.auth
    psl.load()
    return [
        DmarcCheck(
            services.resolver,
            auth.dns_timeout,
            auth.dmarc_reject_action,
            auth.dmarc_quarantine_action,
        )
    ]
