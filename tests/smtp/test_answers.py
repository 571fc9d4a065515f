"""The one mapping from a handler's verdict at a step to the SMTP reply."""

from __future__ import annotations

import pytest

from mailmoat.core.scoring import Decision
from mailmoat.core.symbols import Action, Stage
from mailmoat.core.transaction import Session, Transaction
from mailmoat.delivery.upstream import Reply
from mailmoat.smtp import answers
from mailmoat.smtp.answers import GO, Answer, Outcome, Step, drop, refuse, reply_for, say


def _refusal(code: int, status: str, text: str = "Go away") -> Decision:
    action = Action.SOFT_REJECT if code < 500 else Action.REJECT
    return Decision(action, 9.0, "test", code, status, text)


def _outcome() -> Outcome:
    return Outcome(Transaction(Session("192.0.2.1")), None, "reject", "test", Stage.RCPT)


@pytest.mark.parametrize(
    ("step", "code", "expected"),
    [
        (Step.GREETING, 451, "421 4.7.1 Go away"),
        (Step.GREETING, 550, "554 5.7.1 Go away"),
        (Step.HELO, 550, "550 5.7.1 Go away"),
        (Step.RCPT, 451, "451 4.7.1 Go away"),
        (Step.RCPT, 550, "550 5.7.1 Go away"),
        (Step.MESSAGE, 550, "554 5.7.1 Go away"),
        (Step.MESSAGE, 451, "451 4.7.1 Go away"),
    ],
)
def test_a_refusal_gets_the_code_its_step_asks_for(step: Step, code: int, expected: str) -> None:
    status = "4.7.1" if code < 500 else "5.7.1"
    verdict = refuse(_refusal(code, status), _outcome())
    assert reply_for(verdict, step).line() == expected


def test_go_is_the_steps_own_answer_and_an_answer_stands_as_given() -> None:
    assert reply_for(GO, Step.RCPT, answers.RECIPIENT_OK) == answers.RECIPIENT_OK
    upstream = Answer.of_upstream(Reply(550, "5.1.1 <bob@example.org>: unknown\nsecond line"))
    assert reply_for(say(upstream), Step.RCPT).line() == (
        "550-5.1.1 <bob@example.org>: unknown\r\n550 second line"
    )
    assert reply_for(drop(_outcome()), Step.HELO) == answers.PROTOCOL_ERROR


def test_only_a_421_refusal_and_a_drop_close_the_connection() -> None:
    assert refuse(_refusal(421, "4.7.0"), _outcome()).closes
    assert not refuse(_refusal(451, "4.7.1"), _outcome()).closes
    assert drop(_outcome()).closes
    assert not say(Answer(421, "", "4.4.2 upstream said so")).closes
    assert not GO.closes


def test_answer_lines() -> None:
    assert Answer(250, "", "mx.example\nPIPELINING\nSIZE 10").line() == (
        "250-mx.example\r\n250-PIPELINING\r\n250 SIZE 10"
    )
    assert Answer.of_upstream(Reply(250, "")).line() == "250 "
    assert answers.queued("ABC").line() == "250 2.0.0 Ok: queued as ABC"
    assert answers.INSUFFICIENT.refusing and not answers.OK.refusing
