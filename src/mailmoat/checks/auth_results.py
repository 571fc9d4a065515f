"""Authentication-Results (RFC 8601): what SPF, DKIM, ARC and DMARC found.

How the sender-authentication checks fit together (all at the data stage):

- ``spf`` and ``dkim`` run in the ordinary wave (phase 10), concurrently with
  the other content checks, and leave their results in ``tx.notes`` under
  ``NOTE_SPF`` / ``NOTE_DKIM`` / ``NOTE_ARC`` (lists of ``AuthResult``).
- ``dmarc`` runs in a later wave (phase 20) and reads those notes; a missing
  note (check disabled, crashed or timed out) counts as no authentication.
- ``auth_results`` (this module, phase 30, also for allowlisted clients)
  writes one Authentication-Results field with our authserv-id into
  ``tx.added_headers`` and asks for every incoming Authentication-Results
  field claiming our authserv-id to be dropped (``tx.removed_headers``): a
  sender must never be able to pre-forge our verdicts. It adds
  ``AUTH_RESULTS_FORGED`` when it drops such a field.

This check does no I/O and cannot fail except by a bug; its fail mode is the
runner's default (no header added).
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from typing import ClassVar

from mailmoat import eager
from mailmoat.checks.base import Check, Services
from mailmoat.checks.spec import CheckSpec, SymbolSpec
from mailmoat.config import Config
from mailmoat.core.headers import name_and_value, raw_fields
from mailmoat.core.symbols import Evidence, Stage
from mailmoat.core.transaction import Transaction
from mailmoat.dns.base import DnsAnswer, Resolver

log = logging.getLogger("mailmoat.checks.auth")

NOTE_SPF = "auth.spf"
NOTE_DKIM = "auth.dkim"
NOTE_ARC = "auth.arc"
NOTE_DMARC = "auth.dmarc"
NOTE_FIELDS = "auth.header_fields"

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
_BARE = re.compile(r"^[A-Za-z0-9!#$%&'*+\-./^_`{|}~@]+$")


@dataclass(frozen=True, slots=True)
class AuthResult:
    """One resinfo of an Authentication-Results field.

    ``props`` are (ptype.property, value) pairs such as
    ("smtp.mailfrom", "user@example.org") or ("header.d", "example.org").
    """

    method: str
    result: str
    reason: str = ""
    props: tuple[tuple[str, str], ...] = ()

    def prop(self, name: str) -> str:
        for key, value in self.props:
            if key == name:
                return value
        return ""

    def render(self) -> str:
        text = f"{self.method}={self.result}"
        if self.reason and (self.result != "pass" or self.method == "dmarc"):
            text += f" reason={_quoted(self.reason[:120])}"
        for key, value in self.props:
            if value:
                text += f" {key}={_pvalue(value)}"
        return text


def authserv_id(config: Config) -> str:
    return (config.auth.authserv_id or config.smtp.hostname).strip().lower()


def results_of(tx: Transaction) -> list[AuthResult]:
    found: list[AuthResult] = []
    for key in (NOTE_SPF, NOTE_DKIM, NOTE_ARC, NOTE_DMARC):
        found.extend(tx.notes.get(key, ()))
    return found


def format_value(server_id: str, results: list[AuthResult]) -> str:
    """The field value: ``authserv-id; method=result ...; ...`` (or ``; none``)."""
    if not results:
        return f"{server_id}; none"
    return f"{server_id}; " + "; ".join(r.render() for r in results)


def fields_of(tx: Transaction) -> tuple[tuple[str, str], ...]:
    """``header_fields(tx.data)``, computed once per transaction (DKIM, DMARC
    and this check all read it)."""
    found = tx.notes.get(NOTE_FIELDS)
    if found is None or found[0] is not tx.data:
        found = (tx.data, header_fields(tx.data))
        tx.notes[NOTE_FIELDS] = found
    fields: tuple[tuple[str, str], ...] = found[1]
    return fields


def header_fields(message: bytes) -> tuple[tuple[str, str], ...]:
    """Top-level header fields as (name, unfolded value), exactly as
    ``smtp.content.edit_headers`` presents them to its ``drop`` callback."""
    parsed = (name_and_value(field) for field in raw_fields(message))
    return tuple(field for field in parsed if field is not None)


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


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', "'") + '"'


def _pvalue(value: str) -> str:
    return value if _BARE.match(value) else _quoted(value)


class AuthResultsCheck(Check):
    name: ClassVar[str] = "auth_results"
    stage: ClassVar[str] = Stage.DATA
    phase: ClassVar[int] = 30
    runs_when_allowlisted: ClassVar[bool] = True

    def __init__(self, server_id: str) -> None:
        self.server_id = server_id

    async def run(self, tx: Transaction, evidence: Evidence) -> None:
        forged = [
            (name, value)
            for name, value in fields_of(tx)
            if name.lower() == "authentication-results" and claimed_id(value) == self.server_id
        ]
        if forged:
            tx.removed_headers.extend(forged)
            SPEC.add(evidence, "AUTH_RESULTS_FORGED", f"{len(forged)} field(s)")
        tx.added_headers.append(
            ("Authentication-Results", format_value(self.server_id, results_of(tx)))
        )


def build(services: Services) -> list[Check]:
    return [AuthResultsCheck(authserv_id(services.config))]
