"""The envelope the engine keeps, and the message bytes of one DATA.

Contract: ``Envelope`` is the protocol state of one mail transaction (open
after an accepted MAIL, its options, accepted and attempted recipients, the
recipient overshoot); ``CLOSED`` stands for no transaction.
``read_message`` reads what follows ``354`` up to ``<CR><LF>.<CR><LF>``
under ``smtp.command_timeout`` and the worker's byte budget (``claim``),
and vets it against the limits of ``smtp`` and ``protocol``: a ``Received``
holds either the payload (still dot-stuffed) or the refusal and its reason
(``size``, ``protocol``, ``inflight_budget``), and whether it carries 8-bit
bytes the envelope did not declare (a finding when ``protocol.strict_8bit``
is off). Raises ``TimeoutError`` past the deadline and ``EOFError`` when
the client goes away.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from mailmoat.config import Config
from mailmoat.smtp import answers
from mailmoat.smtp.answers import Answer
from mailmoat.wire import content
from mailmoat.wire.connection import Connection

# DATA starts only with room for its declared SIZE or at least this much.
DATA_ROOM = 65_536
_DECLARES_8BIT = frozenset({"BODY=8BITMIME", "SMTPUTF8"})


@dataclass(slots=True)
class Envelope:
    open: bool = False
    options: list[str] = field(default_factory=list)
    accepted: int = 0
    attempts: int = 0
    overshoot: int = 0


# Between transactions: shared, and never changed (only an open envelope is).
CLOSED = Envelope()


@dataclass(slots=True)
class Received:
    payload: bytes = b""
    refusal: Answer | None = None
    reason: str = ""
    undeclared_8bit: bool = False


async def read_message(
    conn: Connection, config: Config, options: list[str], claim: Callable[[int], bool]
) -> Received:
    limits = config.smtp
    deadline = conn.time() + limits.command_timeout
    payload, size = await conn.read_data(limits.max_message_size, deadline, claim)
    if payload is not None and not claim(len(payload)):
        payload = None
    if payload is None:
        if size <= limits.max_message_size:
            return Received(refusal=answers.INSUFFICIENT, reason="inflight_budget")
        return Received(refusal=answers.MESSAGE_TOO_BIG, reason="size")
    facts = content.inspect(payload, limits.max_line_length)
    refusal: Answer | None = None
    if facts.long_line:
        refusal = Answer(
            554, "5.6.0", f"Message has lines longer than {limits.max_line_length} bytes"
        )
    elif facts.has_nul:
        refusal = answers.MESSAGE_HAS_NUL
    elif facts.bare_newline and limits.bare_newline == "reject":
        refusal = answers.MESSAGE_BARE_NEWLINE
    elif facts.has_8bit and not _DECLARES_8BIT.intersection(options):
        if config.protocol.strict_8bit:
            refusal = answers.MESSAGE_8BIT
        else:
            return Received(payload, undeclared_8bit=True)
    if refusal is not None:
        return Received(refusal=refusal, reason="protocol")
    return Received(payload)
