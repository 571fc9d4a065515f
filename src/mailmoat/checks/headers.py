"""Header sanity (data stage): the fields every real mailer writes.

Symbols: ``HDR_MISSING_DATE`` / ``HDR_BAD_DATE`` (not RFC 5322 parseable),
``HDR_MISSING_FROM`` / ``HDR_BAD_FROM`` (no address in it),
``HDR_MISSING_MESSAGE_ID`` / ``HDR_BAD_MESSAGE_ID`` (not ``<left@right>``),
``HDR_MULTIPLE_FROM`` (RFC 5322 allows one), ``BODY_EMPTY``.
Reads only the header block, with the stdlib's tolerant parser.
"""

from __future__ import annotations

import re
from email.utils import parsedate_tz
from typing import ClassVar

from mailmoat.checks.base import Check, Services
from mailmoat.checks.spec import CheckSpec, SymbolSpec
from mailmoat.core.headers import addresses, header_end
from mailmoat.core.symbols import Evidence, Stage
from mailmoat.core.transaction import Transaction

SPEC = CheckSpec(
    name="headers",
    stages=(Stage.DATA,),
    summary="Header sanity: the fields every real mailer writes.",
    symbols=tuple(
        SymbolSpec(name, score, text, "headers")
        for name, score, text in (
            ("HDR_MISSING_DATE", 1.0, "The message has no Date header (RFC 5322 requires one)."),
            ("HDR_BAD_DATE", 1.0, "The Date header cannot be parsed."),
            ("HDR_MISSING_FROM", 2.0, "The message has no From header (RFC 5322 requires one)."),
            ("HDR_MULTIPLE_FROM", 1.5, "The message has more than one From header."),
            ("HDR_BAD_FROM", 1.5, "The From header holds no address."),
            (
                "HDR_MISSING_MESSAGE_ID",
                0.5,
                "The message has no Message-ID header, typical of bulk tools.",
            ),
            (
                "HDR_BAD_MESSAGE_ID",
                1.0,
                "The Message-ID header is malformed (not an address in angle brackets).",
            ),
            ("BODY_EMPTY", 1.0, "The message has no body text."),
        )
    ),
)

_MESSAGE_ID = re.compile(r"^\s*<[^<>@\s]+@[^<>@\s]+>\s*$")
_NON_SPACE = re.compile(rb"[^ \t\r\n\x0b\x0c]")  # what bytes.strip() keeps


class HeaderSanityCheck(Check):
    name: ClassVar[str] = "headers"
    stage: ClassVar[str] = Stage.DATA

    async def run(self, tx: Transaction, evidence: Evidence) -> None:
        headers = tx.headers
        dates = headers.get_all("Date") or []
        if not dates:
            SPEC.add(evidence, "HDR_MISSING_DATE")
        elif parsedate_tz(str(dates[0])) is None:
            SPEC.add(evidence, "HDR_BAD_DATE", str(dates[0])[:60])
        froms = headers.get_all("From") or []
        if not froms:
            SPEC.add(evidence, "HDR_MISSING_FROM")
        else:
            if len(froms) > 1:
                SPEC.add(evidence, "HDR_MULTIPLE_FROM")
            if not any("@" in address for address in addresses(str(froms[0]))):
                SPEC.add(evidence, "HDR_BAD_FROM", str(froms[0])[:60])
        message_id = headers.get("Message-ID")
        if message_id is None:
            SPEC.add(evidence, "HDR_MISSING_MESSAGE_ID")
        elif not _MESSAGE_ID.match(str(message_id)):
            SPEC.add(evidence, "HDR_BAD_MESSAGE_ID", str(message_id)[:60])
        if not _NON_SPACE.search(tx.data, header_end(tx.data)):
            SPEC.add(evidence, "BODY_EMPTY")


def build(services: Services) -> list[Check]:
    return [HeaderSanityCheck()]
