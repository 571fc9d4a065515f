"""parse_header_block: its own split of plain blocks equals the stdlib's parse."""

from __future__ import annotations

import random
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import Any

import pytest

from mailmoat.core.headers import header_end, parse_header_block, plain_header_block


def _state(message: Message) -> dict[str, Any]:
    state = dict(message.__dict__)
    state["defects"] = [repr(defect) for defect in message.defects]
    return state


def _stdlib(data: bytes) -> Message:
    return BytesHeaderParser(policy=compat32).parsebytes(data[: header_end(data)])


@pytest.mark.parametrize(
    ("data", "plain"),
    [
        (b"From: <a@b>\r\nTo: <c@d>\r\nSubject: hi\r\n\r\nbody\r\n", True),
        (b"Subject: folded\r\n  twice\r\n\tand again\r\nX:\r\n \r\n\r\n", True),
        (b"From a@b Mon Dec  7 19:00:00 2026\r\nSubject: mbox\r\n\r\nx\r\n", True),
        (b"Subject: caf\xc3\xa9 \xff\r\n\r\n", True),
        (b"A:  \t v \r\n\r\n", True),
        (b" starts folded\r\nSubject: x\r\n\r\n", False),
        (b"Subject: x\r\nFrom in the middle\r\n\r\n", False),
        (b"Sub ject: x\r\n\r\n", False),
        (b":no name\r\n\r\n", False),
        (b"Subject: bare\rcr\r\n\r\n", False),
        (b"Subject: no end", False),
        (b"\r\nbody only\r\n", False),
        (b"Subject: lf\nFrom: a@b\n", True),
        (b"From a@b x\r\n", True),  # the envelope line alone
        (b"From a@b x\n\n", False),  # the envelope line, then a blank line
        (b"Subject\r\n x: y\r\n\r\n", False),  # the colon on a continuation line
        (b"X:  \t\r\n\tv\r\nY:\r\n\r\n", True),  # blanks before a fold
    ],
)
def test_same_message_as_the_stdlib(data: bytes, plain: bool) -> None:
    assert (plain_header_block(data[: header_end(data)]) is not None) is plain
    assert _state(parse_header_block(data)) == _state(_stdlib(data))


def test_random_blocks_parse_as_the_stdlib_parses_them() -> None:
    pieces = [
        b"From envelope x\r\n", b"From: a@b\r\n", b"Subject: x\r\n", b" cont\r\n",
        b"\tcont2\r\n", b"X:\r\n", b":bad\r\n", b"From x\r\n", b"Na me: v\r\n",
        b"B: \xe9\xff\r\n", b"\xe9: v\r\n", b"C: a\rb\r\n", b"D: a\nb\r\n", b"\r\n",
        b"E:v", b" \r\n", b"F: \r\n \r\n", b"I: y\n", b" c\n", b"K: z\r",
    ]  # fmt: skip
    rng = random.Random(12)
    plain = 0
    for _ in range(5000):
        data = b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 7)))
        data += rng.choice([b"", b"\r\nbody\r\n", b"\r\n"])
        plain += plain_header_block(data[: header_end(data)]) is not None
        assert _state(parse_header_block(data)) == _state(_stdlib(data)), data
    assert plain > 500  # the fast split is exercised, not only the fallback
