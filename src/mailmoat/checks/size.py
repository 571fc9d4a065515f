"""Message size (mail and data stages).

The hard limit (``smtp.max_message_size``) is protocol: the front refuses
``SIZE=`` above it with 552 and stops reading DATA past it. This check adds
the graded evidence: ``SIZE_DECLARED_WRONG`` when the client announced a
SIZE far below what it sent (broken or lying bulk software), and
``SIZE_OVER_SOFT_LIMIT`` above ``[checks.size] soft_limit`` bytes, for sites
that want large mail tagged rather than refused.
"""

from __future__ import annotations

from typing import ClassVar

from mailmoat.checks.base import Check, Services
from mailmoat.checks.spec import CheckSpec, SymbolSpec
from mailmoat.core.symbols import Evidence, Stage
from mailmoat.core.transaction import Transaction

SPEC = CheckSpec(
    name="size",
    stages=(Stage.DATA,),
    summary="Graded size evidence below the hard limit.",
    symbols=(
        SymbolSpec(
            "SIZE_DECLARED_WRONG",
            1.0,
            "The SIZE declared at MAIL FROM is far below what was sent.",
            "protocol",
        ),
        SymbolSpec(
            "SIZE_OVER_SOFT_LIMIT",
            0.0,
            "The message is larger than half of smtp.max_message_size (the soft limit).",
            "protocol",
        ),
    ),
)


class SizeCheck(Check):
    name: ClassVar[str] = "size"
    stage: ClassVar[str] = Stage.DATA
    runs_when_allowlisted: ClassVar[bool] = True

    def __init__(self, soft_limit: int) -> None:
        self.soft_limit = soft_limit

    async def run(self, tx: Transaction, evidence: Evidence) -> None:
        size = len(tx.data)
        declared = next(
            (int(o[5:]) for o in tx.mail_options if o.startswith("SIZE=") and o[5:].isdigit()),
            None,
        )
        if declared is not None and size > 2 * declared + 1024:
            SPEC.add(evidence, "SIZE_DECLARED_WRONG", f"declared {declared}, sent {size}")
        if self.soft_limit and size > self.soft_limit:
            SPEC.add(evidence, "SIZE_OVER_SOFT_LIMIT", str(size))


def build(services: Services) -> list[Check]:
    limit = services.config.smtp.max_message_size // 2
    return [SizeCheck(limit)]
