"""Symbols that no check adds: the SMTP front's protocol tests and the runner's.

Contract: ``FRONT_SPEC`` declares what the SMTP front adds itself (pregreet,
protocol violations, undeclared 8-bit data), ``RUNNER_SPEC`` the
``CHECK_<NAME>_FAILED`` family the runner adds for a check that crashed or
timed out. They are listed with the checks' specs (``mailmoat symbols``,
docs/symbols.md, ``[scores]`` validation) but are no ``[checks.NAME]``.
"""

from __future__ import annotations

from mailmoat.checks.spec import CheckSpec, FamilySpec, SymbolSpec
from mailmoat.core.symbols import Stage

FRONT_SPEC = CheckSpec(
    name="smtp",
    stages=(Stage.CONNECT, Stage.HELO, Stage.MAIL, Stage.RCPT, Stage.DATA),
    summary="Protocol tests of the SMTP front (pregreet, protocol, 8-bit data).",
    symbols=(
        SymbolSpec(
            "PREGREET",
            0.0,
            "The client talked before our greeting: a bot that does not wait.",
            "protocol",
        ),
        SymbolSpec(
            "PROTOCOL_BARE_NEWLINE",
            0.0,
            "SMTP commands ended with a bare LF, as hand-made bot clients do.",
            "protocol",
        ),
        SymbolSpec(
            "PROTOCOL_NON_SMTP",
            0.0,
            "The client sent a non-SMTP command (HTTP, POP...).",
            "protocol",
        ),
        SymbolSpec(
            "PROTOCOL_PIPELINING",
            0.0,
            "The client pipelined commands without being offered PIPELINING.",
            "protocol",
        ),
        SymbolSpec(
            "SMTP_8BIT_UNDECLARED",
            0.5,
            "8-bit bytes were sent without BODY=8BITMIME or SMTPUTF8.",
            "protocol",
        ),
    ),
)

RUNNER_SPEC = CheckSpec(
    name="runner",
    stages=(Stage.CONNECT, Stage.HELO, Stage.MAIL, Stage.RCPT, Stage.DATA),
    summary="The check runner: checks that crashed or timed out.",
    families=(
        FamilySpec(
            "CHECK_",
            "CHECK_<NAME>_FAILED",
            "The check NAME failed or timed out; its fail mode (checks.NAME.fail_mode) applied.",
            "runner",
            score=0.0,
        ),
    ),
)
