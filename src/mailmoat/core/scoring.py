"""From evidence to a decision: the one place where precedence is applied.

Policy, in order:
1. Relay control is not evidence: the fronts refuse foreign recipients before
   any check runs (see ``core.relay``), and nothing here can undo that.
2. Forced verdicts: the one with the highest ``Precedence`` wins; between
   equals, the harsher action wins (reject > soft_reject > accept). A forced
   ACCEPT (allowlist) ends the matter: no score applies.
3. Before DATA the score can only reject (``actions.reject_before_data``),
   never tag or quarantine: there is no message yet.
4. At end of DATA the total score maps to the action whose threshold it
   reaches: reject > quarantine > soft_reject > add_header > accept.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailmoat.config import ActionsConfig
from mailmoat.core.symbols import Action, Forced, Precedence, Stage, Symbol

_HARSHNESS = {
    Action.ACCEPT: 0,
    Action.ADD_HEADER: 1,
    Action.QUARANTINE: 2,
    Action.DISCARD: 3,
    Action.SOFT_REJECT: 4,
    Action.REJECT: 5,
}


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    score: float
    # Why: "score", or the forced verdict's reason ("greylist", "dnsbl"...).
    reason: str = "score"
    code: int = 250
    status: str = "2.0.0"
    text: str = "Ok"

    @property
    def is_final_refusal(self) -> bool:
        return self.action in (Action.REJECT, Action.SOFT_REJECT)

    def reply(self) -> str:
        return f"{self.code} {self.status} {self.text}"


DEFAULT_REPLIES: dict[Action, tuple[int, str, str]] = {
    Action.SOFT_REJECT: (451, "4.7.1", "Try again later"),
    Action.REJECT: (550, "5.7.1", "Message refused as spam"),
}


def pick_forced(forced: list[Forced]) -> Forced | None:
    """The forced verdict that wins, or None."""
    if not forced:
        return None
    return max(forced, key=lambda f: (f.precedence, _HARSHNESS[f.action]))


def decide(
    symbols: list[Symbol],
    forced: list[Forced],
    thresholds: ActionsConfig,
    stage: Stage,
) -> Decision:
    """Apply the precedence policy above; never raises."""
    score = round(sum(s.score for s in symbols), 2)
    winner = pick_forced(forced)
    if winner is not None:
        return _from_forced(winner, score)
    if stage is not Stage.DATA:
        if thresholds.reject_before_data and _reaches(score, thresholds.reject):
            return _refusal(Action.REJECT, score, "score", stage)
        return Decision(Action.ACCEPT, score)
    for action, threshold in (
        (Action.REJECT, thresholds.reject),
        (Action.QUARANTINE, thresholds.quarantine),
        (Action.SOFT_REJECT, thresholds.soft_reject),
        (Action.ADD_HEADER, thresholds.add_header),
    ):
        if _reaches(score, threshold):
            if action in (Action.REJECT, Action.SOFT_REJECT):
                return _refusal(action, score, "score", stage)
            return Decision(action, score)
    return Decision(Action.ACCEPT, score)


def _reaches(score: float, threshold: float) -> bool:
    return threshold > 0 and score >= threshold


def _refusal(action: Action, score: float, reason: str, stage: Stage) -> Decision:
    code, status, text = DEFAULT_REPLIES[action]
    if action is Action.REJECT and stage is Stage.DATA:
        code = 554
    return Decision(action, score, reason, code, status, text)


def _from_forced(verdict: Forced, score: float) -> Decision:
    if verdict.action in DEFAULT_REPLIES:
        code, status, text = DEFAULT_REPLIES[verdict.action]
        return Decision(
            verdict.action,
            score,
            verdict.reason,
            verdict.code or code,
            verdict.status or status,
            verdict.text or text,
        )
    return Decision(verdict.action, score, verdict.reason)


__all__ = ["DEFAULT_REPLIES", "Decision", "Precedence", "decide", "pick_forced"]
