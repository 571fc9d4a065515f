"""The narrow interface between the SMTP protocol engine and the gateway.

Contract: the engine (``smtp/protocol.py``) owns the wire, the grammar and
the order of commands; a ``Handler`` owns what the gateway does with a
well-formed dialogue: checks, relay control, the upstream leg, delivery
and records. The engine calls it only with commands that passed the
grammar and sequence rules, and gets back a ``Verdict``
(``smtp/answers.py``), which the engine turns into the reply with
``reply_for``; when the verdict carries an ``Outcome`` the engine then
hands it back with the reply said (``record``), so every log line shows
the reply the client really got. The engine keeps the protocol facts on
the shared ``Session`` (helo, esmtp, tls, ``findings``) before it calls.

A method called for a command may raise: the engine answers ``451
4.3.0`` for that command and calls ``on_reset``. ``on_close`` is called
exactly once, whatever ended the connection.
"""

from __future__ import annotations

from typing import Protocol

from mailmoat.core.findings import Finding
from mailmoat.smtp.answers import Answer, Outcome, Verdict


class Handler(Protocol):
    async def on_connect(self) -> Verdict:
        """Before the greeting: ``GO``, or a refusal said instead of it."""
        ...

    async def greeting_delay(self) -> float:
        """Seconds to watch for input before the greeting (0: greet now)."""
        ...

    async def on_patient(self) -> None:
        """The client waited the whole greeting delay in silence."""
        ...

    async def on_finding(self, finding: Finding) -> Verdict:
        """Score a finding just recorded on the session: ``GO`` or a drop."""
        ...

    async def on_helo(self, name: str) -> Verdict: ...

    async def on_mail(self, sender: str, options: list[str], forwarded: dict[str, str]) -> Verdict:
        """MAIL FROM; ``forwarded``: XFORWARD attributes sent since the
        last transaction (the client behind a trusted proxy)."""
        ...

    async def on_rcpt(self, rcpt: str) -> Verdict: ...

    async def on_message(self, payload: bytes) -> Verdict:
        """The message as received (dot-stuffed), within every limit: the
        data stage and delivery; never ``GO`` (the reply says where it went)."""
        ...

    async def on_message_refused(self, answer: Answer, reason: str) -> Verdict:
        """The engine refuses the message itself (size, NUL, budget...)."""
        ...

    async def on_end(self) -> None:
        """The transaction is over (after DATA)."""
        ...

    async def on_reset(self) -> None:
        """The transaction is aborted (RSET, a new HELO, STARTTLS, an error)."""
        ...

    async def record(self, outcome: Outcome, answer: Answer) -> None:
        """Log ``outcome`` with the reply the client was given."""
        ...

    async def on_close(self) -> None:
        """The connection ends: give resources back, run session cleanups."""
        ...
