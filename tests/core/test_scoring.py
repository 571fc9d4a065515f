"""The decision policy: forced verdict precedence, thresholds per stage."""

from mailmoat.config import ActionsConfig
from mailmoat.core.scoring import decide
from mailmoat.core.symbols import Action, Forced, Precedence, Stage, Symbol

THRESHOLDS = ActionsConfig(reject=15, quarantine=10, soft_reject=8, add_header=5)


def sym(score: float) -> list[Symbol]:
    return [Symbol("TEST", score)]


def test_score_bands_at_data() -> None:
    cases = {
        0.0: Action.ACCEPT,
        4.99: Action.ACCEPT,
        5.0: Action.ADD_HEADER,
        8.0: Action.SOFT_REJECT,
        10.0: Action.QUARANTINE,
        15.0: Action.REJECT,
        99.0: Action.REJECT,
    }
    for score, expected in cases.items():
        assert decide(sym(score), [], THRESHOLDS, Stage.DATA).action is expected, score


def test_reject_at_data_is_554_and_before_data_550() -> None:
    assert decide(sym(20), [], THRESHOLDS, Stage.DATA).code == 554
    rcpt = decide(sym(20), [], THRESHOLDS, Stage.RCPT)
    assert (rcpt.action, rcpt.code, rcpt.status) == (Action.REJECT, 550, "5.7.1")


def test_before_data_only_rejects() -> None:
    assert decide(sym(12), [], THRESHOLDS, Stage.RCPT).action is Action.ACCEPT
    no_early = ActionsConfig(reject=15, reject_before_data=False)
    assert decide(sym(20), [], no_early, Stage.RCPT).action is Action.ACCEPT


def test_zero_threshold_disables_action() -> None:
    off = ActionsConfig(reject=0, quarantine=0, soft_reject=0, add_header=0)
    assert decide(sym(100), [], off, Stage.DATA).action is Action.ACCEPT


def test_allowlist_beats_deny_and_score() -> None:
    allow = Forced(Action.ACCEPT, Precedence.PERMANENT_ALLOW, "allowlist")
    deny = Forced(Action.REJECT, Precedence.PERMANENT_DENY, "denylist", 554, "5.7.1", "Denied")
    decision = decide(sym(100), [deny, allow], THRESHOLDS, Stage.DATA)
    assert decision.action is Action.ACCEPT
    assert decision.reason == "allowlist"


def test_equal_precedence_harsher_wins_and_keeps_its_reply() -> None:
    grey = Forced(Action.SOFT_REJECT, Precedence.TEST, "greylist", 451, "4.7.1", "Greylisted")
    block = Forced(Action.REJECT, Precedence.TEST, "dnsbl", 554, "5.7.1", "Listed")
    decision = decide([], [grey, block], THRESHOLDS, Stage.RCPT)
    assert decision.reply() == "554 5.7.1 Listed"
    assert decision.reason == "dnsbl"


def test_forced_without_reply_gets_default_reply() -> None:
    decision = decide(
        [], [Forced(Action.SOFT_REJECT, Precedence.TEST, "x")], THRESHOLDS, Stage.RCPT
    )
    assert decision.reply() == "451 4.7.1 Try again later"
