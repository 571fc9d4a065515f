"""Authentication-Results (RFC 8601): what SPF, DKIM, ARC and DMARC found.

How the sender-authentication checks fit together (all at the data stage):

- ``spf`` and ``dkim`` run in the first wave, concurrently with the other
  content checks, and leave their results in the transaction's typed fields
  ``tx.spf_results`` / ``tx.dkim_results`` / ``tx.arc_results`` (lists of
  ``AuthResult``, ``mailmoat.core.authresults``).
- ``dmarc`` requires spf and dkim, so it runs in the next wave and reads
  them; an empty list (check disabled, crashed or timed out) counts as no
  authentication. It writes ``tx.dmarc_results``.
- ``auth_results`` (this module, also for allowlisted clients) requires all
  three, so it runs last. It writes one Authentication-Results field with
  our authserv-id into ``tx.added_headers`` and asks for every incoming
  Authentication-Results field claiming our authserv-id to be dropped
  (``tx.removed_headers``): a sender must never be able to pre-forge our
  verdicts. It adds ``AUTH_RESULTS_FORGED`` when it drops such a field.
- Each reads only the header fields it needs (``tx.fields_named``: DKIM and
  ARC signatures, From, Authentication-Results), as ``tx.header_fields``
  gives them; the others are not unfolded or decoded.

This check does no I/O and cannot fail except by a bug; its fail mode is the
runner's default (no header added).
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import ClassVar

from mailmoat import eager
from mailmoat.checks.base import Check, Services
from mailmoat.checks.spec import CheckSpec, SymbolSpec
from mailmoat.config import Config
from mailmoat.core.authresults import AuthResult as AuthResult  # re-exported
from mailmoat.core.headers import header_fields as header_fields  # re-exported
from mailmoat.core.symbols import Evidence, Stage
from mailmoat.core.transaction import Transaction
from mailmoat.dns.base import DnsAnswer, Resolver

log = logging.getLogger("mailmoat.checks.auth")

SPEC = CheckSpec(
    name="auth_results",
    stages=(Stage.DATA,),
    summary="Writes our Authentication-Results field; drops forged ones.",
    requires=("spf", "dkim", "dmarc"),
    symbols=(
        SymbolSpec(
            "AUTH_RESULTS_FORGED",
            0.5,
            "The message came with an Authentication-Results field in our name (dropped).",
            "authentication",
        ),
    ),
)

_COMMENT = re.compile(r"\([^()]*\)")


def authserv_id(config: Config) -> str:
    return (config.auth.authserv_id or config.smtp.hostname).strip().lower()


def results_of(tx: Transaction) -> list[AuthResult]:
    return [*tx.spf_results, *tx.dkim_results, *tx.arc_results, *tx.dmarc_results]


def format_value(server_id: str, results: list[AuthResult]) -> str:
    """The field value: ``authserv-id; method=result ...; ...`` (or ``; none``)."""
    if not results:
        return f"{server_id}; none"
    return f"{server_id}; " + "; ".join(r.render() for r in results)


def claimed_id(value: str) -> str:
    """The authserv-id an Authentication-Results value names (lower case)."""
    head = _COMMENT.sub(" ", value.split(";", 1)[0]).split()
    return head[0].lower().strip('"') if head else ""


async def lookup(resolver: Resolver, name: str, rdtype: str, timeout: float) -> DnsAnswer:
    """One DNS query bounded by ``timeout``; never raises (failures are
    answers with status ``timeout``/``servfail``)."""
    try:
        # Most queries are cache hits, answered without waiting: no timer
        # for those; a timeout scope, not wait_for, for the others (no task).
        started = eager.start(resolver.resolve(name, rdtype))
        if isinstance(started, eager.Finished):
            return started.value
        async with asyncio.timeout(timeout):
            return await started
    except TimeoutError:
        return DnsAnswer("timeout")
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # a resolver bug must not pass for an answer
        log.warning("dns query=%s type=%s failed: %s", name, rdtype, exc)
        return DnsAnswer("servfail")


class AuthResultsCheck(Check):
    name: ClassVar[str] = "auth_results"
    stage: ClassVar[str] = Stage.DATA
    runs_when_allowlisted: ClassVar[bool] = True

    def __init__(self, server_id: str) -> None:
        self.server_id = server_id

    async def run(self, tx: Transaction, evidence: Evidence) -> None:
        forged = [
            (name, value)
            for name, value in tx.fields_named("authentication-results")
            if claimed_id(value) == self.server_id
        ]
        if forged:
            tx.removed_headers.extend(forged)
            SPEC.add(evidence, "AUTH_RESULTS_FORGED", f"{len(forged)} field(s)")
        tx.added_headers.append(
            ("Authentication-Results", format_value(self.server_id, results_of(tx)))
        )


def build(services: Services) -> list[Check]:
    return [AuthResultsCheck(authserv_id(services.config))]
