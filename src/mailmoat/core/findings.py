"""Protocol findings: what the SMTP engine saw a client do, as typed facts.

Contract: a ``Finding`` is recorded by the SMTP front's protocol engine on
the ``Session`` (``session.findings``) or, for what concerns one message,
on the ``Transaction`` (``tx.findings``) the moment it is seen. The engine
never scores a finding: ``mailmoat.checks.doors.finding_evidence`` says what
each one is worth (its symbol, and a forced refusal when its configured
action is ``enforce``), as postscreen keeps its tests apart from its engine.
"""

from __future__ import annotations

from enum import StrEnum


class Finding(StrEnum):
    # The client talked before our greeting (postscreen's pregreet test).
    PREGREET = "pregreet"
    # A command line ended with a bare LF.
    BARE_NEWLINE = "bare_newline"
    # A non-SMTP command (HTTP, POP...).
    NON_SMTP = "non_smtp"
    # Commands sent ahead of our replies without PIPELINING offered.
    PIPELINING = "pipelining"
    # 8-bit message bytes without BODY=8BITMIME or SMTPUTF8.
    UNDECLARED_8BIT = "undeclared_8bit"
