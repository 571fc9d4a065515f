"""What the SMTP front says: typed replies, the handler's verdicts, and the
one mapping from a verdict at a step of the dialogue to its reply.

Contract: an ``Answer`` is one SMTP reply (code, enhanced status, text);
``Answer.line()`` is its text form (a text of several lines, as an EHLO
reply or a mirrored upstream reply, becomes a multi-line reply),
``Answer.wire`` the bytes sent. The front's fixed replies are the constants below. A
``Verdict`` is what a ``Handler`` (``smtp/handler.py``) returns for a
step: go on, a pipeline refusal (``Decision``), an answer of its own (the
upstream's, a delivery target's, relay control's), or drop the client.
A verdict that ends something the log must show carries its ``Outcome``,
recorded by the handler once the reply is said (``Handler.record``).
``reply_for(verdict, step)`` is the only place a verdict becomes a reply:
a refusal's code is mapped as a number by ``core.replies.refusal_code``
(instead of the greeting: 421/554; at end of DATA a permanent 550 is 554),
never by editing reply text. Pure; never raises.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from enum import Enum

from mailmoat.core.replies import refusal_code
from mailmoat.core.scoring import Decision
from mailmoat.core.symbols import Stage
from mailmoat.core.transaction import Transaction
from mailmoat.delivery.upstream import Reply
from mailmoat.smtp.xforward import OFFERED as XFORWARD_OFFERED


@dataclass(frozen=True, slots=True)
class Answer:
    code: int
    # Enhanced status code (RFC 3463); "" when the text carries its own
    # (a mirrored upstream reply) or the reply has none (EHLO, greeting).
    status: str
    text: str
    # The reply as sent, CRLF included: made once per answer.
    wire: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "wire", self.line().encode("utf-8", "replace") + b"\r\n")

    @property
    def refusing(self) -> bool:
        return self.code >= 400

    def line(self) -> str:
        if self.status:
            return f"{self.code} {self.status} {self.text}"
        parts = self.text.splitlines() or [""]
        if len(parts) == 1:
            return f"{self.code} {parts[0]}"
        code = self.code
        return "\r\n".join([*(f"{code}-{part}" for part in parts[:-1]), f"{code} {parts[-1]}"])

    @classmethod
    def of_upstream(cls, reply: Reply) -> Answer:
        """The upstream's reply, passed on as it came."""
        return cls(reply.code, "", reply.text)


def queued(queue_id: str) -> Answer:
    return Answer(250, "2.0.0", f"Ok: queued as {queue_id}")


OK = Answer(250, "2.0.0", "Ok")
SENDER_OK = Answer(250, "2.1.0", "Ok")
RECIPIENT_OK = Answer(250, "2.1.5", "Ok")
BYE = Answer(221, "2.0.0", "Bye")
HELP = Answer(214, "2.0.0", "See RFC 5321")
CANNOT_VRFY = Answer(252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery")
START_DATA = Answer(354, "", "End data with <CR><LF>.<CR><LF>")
START_TLS = Answer(220, "2.0.0", "Ready to start TLS")
SHUTTING_DOWN = Answer(421, "4.3.2", "Service shutting down, try again later")
SHUTTING_DOWN_IN_DATA = Answer(451, "4.3.2", "Service shutting down, try again later")
TOO_MANY_ERRORS = Answer(421, "4.7.0", "Too many errors, closing connection")
TOO_MANY_CONNECTIONS = Answer(421, "4.7.0", "Too many connections, try again later")
TIMEOUT = Answer(421, "4.4.2", "Timeout exceeded, closing connection")
TIMEOUT_IN_DATA = Answer(421, "4.4.2", "Timeout exceeded during DATA, closing connection")
INTERNAL_ERROR = Answer(451, "4.3.0", "Internal error, try again later")
LOCAL_DELIVERY_FAILED = Answer(451, "4.3.0", "Local delivery failed, try again later")
LOCAL_STORAGE_FAILED = Answer(451, "4.3.0", "Local storage failed, try again later")
UPSTREAM_UNAVAILABLE = Answer(451, "4.4.1", "Upstream mail server unavailable, try again later")
# RFC 3463 4.3.1: the worker's budget of message bytes in flight is spent.
INSUFFICIENT = Answer(452, "4.3.1", "Insufficient system resources, try again later")
TOO_MANY_RECIPIENTS = Answer(452, "4.5.3", "Too many recipients")
LINE_TOO_LONG = Answer(500, "5.5.2", "Line too long")
NUL_IN_COMMAND = Answer(500, "5.5.2", "Syntax error: NUL byte in command")
BAD_COMMAND = Answer(500, "5.5.2", "Syntax error: bad command")
UNRECOGNIZED = Answer(500, "5.5.1", "Command unrecognized")
NOT_IMPLEMENTED = Answer(502, "5.5.1", "Command not implemented")
EXPN_UNAVAILABLE = Answer(502, "5.5.1", "EXPN not available")
STARTTLS_UNAVAILABLE = Answer(502, "5.5.1", "STARTTLS not available")
HOSTNAME_CONTROL = Answer(501, "5.5.2", "Syntax: control character in hostname")
NEED_HELO = Answer(503, "5.5.1", "Error: send HELO/EHLO first")
NESTED_MAIL = Answer(503, "5.5.1", "Error: nested MAIL command")
NEED_MAIL = Answer(503, "5.5.1", "Error: need MAIL command")
NEED_RCPT = Answer(503, "5.5.1", "Error: need RCPT command")
NO_VALID_RECIPIENTS = Answer(554, "5.5.1", "Error: no valid recipients")
IN_TRANSACTION = Answer(503, "5.5.1", "Error: MAIL transaction in progress")
TLS_ACTIVE = Answer(503, "5.5.1", "Error: TLS already active")
PIPELINED_AFTER_STARTTLS = Answer(554, "5.5.1", "Error: input pipelined after STARTTLS")
PROTOCOL_ERROR = Answer(521, "5.5.1", "Protocol error, goodbye")
MAIL_SYNTAX = Answer(501, "5.5.4", "Syntax: MAIL FROM:<address>")
RCPT_SYNTAX = Answer(501, "5.5.4", "Syntax: RCPT TO:<address>")
MESSAGE_TOO_BIG = Answer(552, "5.3.4", "Message size exceeds fixed maximum message size")
MESSAGE_HAS_NUL = Answer(554, "5.6.0", "Message contains NUL characters")
MESSAGE_BARE_NEWLINE = Answer(554, "5.5.2", "Message contains bare <CR> or <LF> line ends")
MESSAGE_8BIT = Answer(554, "5.6.1", "8-bit data requires BODY=8BITMIME")


@functools.lru_cache(maxsize=16)
def greeting(hostname: str, banner: str) -> Answer:
    """The ``220`` greeting (made once per config, not per connection)."""
    return Answer(220, "", f"{hostname} {banner}")


@functools.lru_cache(maxsize=16)
def helo_reply(hostname: str) -> Answer:
    """The ``250`` reply to HELO: our name."""
    return Answer(250, "", hostname)


@functools.lru_cache(maxsize=64)
def capabilities(hostname: str, max_size: int, *, starttls: bool, xforward: bool) -> Answer:
    """The EHLO reply: our name and the extensions we offer (an answer is
    immutable: made once per combination, not per EHLO)."""
    keywords = [
        hostname,
        "PIPELINING",
        f"SIZE {max_size}",
        "8BITMIME",
        "SMTPUTF8",
        "ENHANCEDSTATUSCODES",
    ]
    if starttls:
        keywords.append("STARTTLS")
    if xforward:
        keywords.append(XFORWARD_OFFERED)
    return Answer(250, "", "\n".join(keywords))


def syntax(usage: str) -> Answer:
    """``501 5.5.4 Syntax: <usage>``."""
    return Answer(501, "5.5.4", f"Syntax: {usage}")


class Step(Enum):
    """The point of the dialogue a verdict answers."""

    GREETING = Stage.CONNECT
    HELO = Stage.HELO
    MAIL = Stage.MAIL
    RCPT = Stage.RCPT
    MESSAGE = Stage.DATA  # end of DATA


class Kind(Enum):
    GO = "go"  # the step's own positive answer
    REFUSE = "refuse"  # the pipeline's refusal (``decision``)
    ANSWER = "answer"  # an answer the handler chose (``answer``)
    DROP = "drop"  # 521 and close (a finding's ``drop`` action)


@dataclass(slots=True)
class Outcome:
    """What the log records of a refusal or a finished message."""

    tx: Transaction
    decision: Decision | None
    action: str
    reason: str
    stage: Stage
    rcpts: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    kind: Kind
    decision: Decision | None = None
    answer: Answer | None = None
    outcome: Outcome | None = None

    @property
    def closes(self) -> bool:
        """Whether the client is disconnected after the reply."""
        if self.kind is Kind.DROP:
            return True
        return self.kind is Kind.REFUSE and self.decision is not None and self.decision.code == 421


GO = Verdict(Kind.GO)


def refuse(decision: Decision, outcome: Outcome) -> Verdict:
    return Verdict(Kind.REFUSE, decision=decision, outcome=outcome)


def say(answer: Answer, outcome: Outcome | None = None) -> Verdict:
    return Verdict(Kind.ANSWER, answer=answer, outcome=outcome)


def drop(outcome: Outcome) -> Verdict:
    return Verdict(Kind.DROP, outcome=outcome)


def reply_for(verdict: Verdict, step: Step, accepted: Answer = OK) -> Answer:
    """The reply to ``verdict`` at ``step``; ``accepted`` for ``GO``."""
    kind = verdict.kind
    if kind is Kind.GO:
        return accepted
    if kind is Kind.ANSWER and verdict.answer is not None:
        return verdict.answer
    decision = verdict.decision
    if kind is Kind.DROP or decision is None:
        return PROTOCOL_ERROR
    code = refusal_code(decision, step.value, instead_of_greeting=step is Step.GREETING)
    return Answer(code, decision.status, decision.text)
