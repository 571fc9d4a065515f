"""From a refusing decision to its SMTP reply line: the one place that says
which code a refusal gets where.

Contract: ``refusal_line(decision, stage)`` is the reply for a refusing
``Decision`` (reject or soft reject) at ``stage``. The scorer's code,
enhanced status and text stand, except where SMTP asks for another code:

- instead of the greeting (``instead_of_greeting=True``: the SMTP front's
  connect stage) a temporary refusal is ``421`` and a permanent one ``554``
  (RFC 5321 3.1: the client is told to go away and the connection closes);
- at end of DATA a permanent refusal of the message is ``554``, not the
  ``550`` that names a mailbox.

Codes are mapped as numbers, never by editing the reply text. Pure; never
raises.
"""

from __future__ import annotations

from mailmoat.core.scoring import Decision
from mailmoat.core.symbols import Stage

_INSTEAD_OF_GREETING = {451: 421, 550: 554}


def refusal_code(decision: Decision, stage: Stage, *, instead_of_greeting: bool = False) -> int:
    code = decision.code
    if instead_of_greeting:
        return _INSTEAD_OF_GREETING.get(code, code)
    if stage is Stage.DATA and code == 550 and decision.status.startswith("5"):
        return 554
    return code


def refusal_line(decision: Decision, stage: Stage, *, instead_of_greeting: bool = False) -> str:
    code = refusal_code(decision, stage, instead_of_greeting=instead_of_greeting)
    return f"{code} {decision.status} {decision.text}"
