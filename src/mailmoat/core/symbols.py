"""Evidence vocabulary: stages, symbols and forced verdicts.

A check never decides an SMTP reply. It reports *symbols* (named evidence with a
default score, overridable in config) and, for the few tests that must bypass
the score (allow/deny lists, rate limits, greylisting, relay control), a
*forced verdict* carrying its precedence. The scorer (``core.scoring``) turns
both into one decision.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, StrEnum


class Stage(StrEnum):
    """SMTP stages at which checks run, in protocol order."""

    CONNECT = "connect"
    HELO = "helo"
    MAIL = "mail"
    RCPT = "rcpt"
    DATA = "data"


class Action(StrEnum):
    """What happens to a message (or, before DATA, to a command)."""

    ACCEPT = "accept"
    ADD_HEADER = "add_header"
    QUARANTINE = "quarantine"
    SOFT_REJECT = "soft_reject"
    REJECT = "reject"
    DISCARD = "discard"


class Precedence(IntEnum):
    """Who wins when several forced verdicts apply: the highest value.

    The order is the policy, written down once: permanent lists beat cached
    passes, which beat the protocol/reputation tests, which beat the score.
    A permanent allow entry beats a permanent deny entry for the same client
    so an administrator can punch holes into broad deny ranges.
    """

    SCORE = 0
    TEST = 10
    CACHED_PASS = 20
    PERMANENT_DENY = 30
    PERMANENT_ALLOW = 40


@dataclass(frozen=True, slots=True)
class Symbol:
    """One piece of evidence: ``DNSBL_ZEN +6.0 (127.0.0.2)``."""

    name: str
    score: float
    detail: str = ""

    def __str__(self) -> str:
        text = f"{self.name}({self.score:+.2f})"
        return f"{text}[{self.detail}]" if self.detail else text


@dataclass(frozen=True, slots=True)
class Forced:
    """A verdict that bypasses the score.

    ``action`` is ACCEPT for allowlists (skip the remaining tests and the
    score), or SOFT_REJECT / REJECT with the SMTP reply to give.
    ``reason`` names the counter the statistics increment (``greylist``,
    ``rate_limit``, ``dnsbl``...).
    """

    action: Action
    precedence: Precedence
    reason: str
    code: int = 0
    status: str = ""
    text: str = ""
    # Applied at once, at the stage that found it (rate limits at connect:
    # 421 and close). Otherwise refusals found before RCPT wait for the first
    # RCPT, so the log shows the envelope (Postfix's smtpd_delay_reject).
    immediate: bool = False


@dataclass(slots=True)
class Evidence:
    """What one check run produced; filled by the check, read by the runner."""

    symbols: list[Symbol] = field(default_factory=list)
    forced: list[Forced] = field(default_factory=list)

    def add(self, name: str, score: float, detail: str = "") -> None:
        self.symbols.append(Symbol(name, score, detail))

    def force(self, verdict: Forced) -> None:
        self.forced.append(verdict)
