"""The one mapping from a refusing decision and stage to the reply line."""

from __future__ import annotations

import pytest

from mailmoat.core.replies import refusal_line
from mailmoat.core.scoring import Decision
from mailmoat.core.symbols import Action, Stage


def _decision(code: int, status: str, text: str) -> Decision:
    action = Action.SOFT_REJECT if code < 500 else Action.REJECT
    return Decision(action, 9.0, "test", code, status, text)


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [(451, "4.7.1", "421 4.7.1"), (550, "5.7.1", "554 5.7.1"), (421, "4.7.0", "421 4.7.0")],
)
def test_instead_of_the_greeting_the_client_is_sent_away(
    code: int, status: str, expected: str
) -> None:
    line = refusal_line(_decision(code, status, "Go away"), Stage.CONNECT, instead_of_greeting=True)
    assert line == f"{expected} Go away"


def test_a_refused_message_is_554_and_a_refused_mailbox_stays_550() -> None:
    spam = _decision(550, "5.7.1", "Message refused as spam")
    assert refusal_line(spam, Stage.DATA) == "554 5.7.1 Message refused as spam"
    assert refusal_line(spam, Stage.RCPT) == "550 5.7.1 Message refused as spam"
    later = _decision(451, "4.7.1", "Try again later")
    assert refusal_line(later, Stage.DATA) == "451 4.7.1 Try again later"


def test_codes_in_the_text_are_never_touched() -> None:
    # String replacement on the whole line rewrote a code quoted in the text.
    listed = _decision(554, "5.7.1", "Listed: 451 and 550 5 reports")
    assert refusal_line(listed, Stage.CONNECT, instead_of_greeting=True).endswith(
        "Listed: 451 and 550 5 reports"
    )
    assert refusal_line(listed, Stage.DATA) == "554 5.7.1 Listed: 451 and 550 5 reports"
    other = _decision(553, "5.7.1", "see 550 5.7.1")
    assert refusal_line(other, Stage.DATA) == "553 5.7.1 see 550 5.7.1"
