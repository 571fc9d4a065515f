"""fields_named: the named fields of header_fields, without splitting them all."""

from __future__ import annotations

import random

import pytest

from mailmoat.core.fieldpick import fields_named, lower_head, mentions
from mailmoat.core.headers import header_fields
from mailmoat.core.transaction import Session, Transaction

NAMES = [
    ("from",),
    ("dkim-signature", "arc-seal", "arc-message-signature"),
    ("authentication-results",),
    ("subject", "x"),
]


def _expected(data: bytes, names: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    return tuple(field for field in header_fields(data) if field[0].lower() in names)


@pytest.mark.parametrize(
    "data",
    [
        b"From: <a@b>\r\nTo: <c@d>\r\nSubject: hi\r\n\r\nbody\r\n",
        b"From a@b Mon Dec  7 19:00:00 2026\r\nfrom: x@y\r\nReceived: from a\r\n\r\n",
        b" From : leading\r\nFROM\r\n : colon on the next line\r\n\r\n",
        b"\x0cFrom\x1f: odd spaces\r\nFr\r\n om: split name\r\n\r\n",
        b"From\xe9: not ascii\r\nX-From: other\r\nFromage: other\r\n\r\n",
        b"DKIM-Signature: v=1; d=a.example;\r\n s=sel; b=abc\r\nARC-Seal: i=1\r\n\r\n",
        b"Authentication-Results: mx.example; spf=pass\rSubject: bare cr\r\n\r\n",
        b"Subject: lf\nFrom: a@b\n",
        b"no colon at all\r\n\r\n",
        b"\r\nFrom: in the body\r\n",
        b"",
    ],
)
def test_named_fields_are_those_of_header_fields(data: bytes) -> None:
    for names in NAMES:
        assert fields_named(data, names) == _expected(data, names), names
        if not mentions(lower_head(data), [n.encode() for n in names]):
            assert _expected(data, names) == ()


def test_random_blocks_give_the_same_named_fields() -> None:
    pieces = [
        b"From envelope x\r\n", b"From: a@b\r\n", b"from : c@d\r\n", b" cont\r\n",
        b"\tcont2\r\n", b"X:\r\n", b":bad\r\n", b"FROM x\r\n", b"Fr om: v\r\n",
        b"B: \xe9\xff\r\n", b"\xe9From: v\r\n", b"C: a\rb\r\n", b"D: a\nb\r\n", b"\r\n",
        b"E:v", b" \r\n", b"DKIM-Signature: d=x\r\n", b"Subject: y\n", b" c\n", b"x: z\r",
        b"Authentication-Results: h; none\r\n", b"\x0bFrom:\x0c v\r\n", b"From\r\n",
        b"Received: from a\r\n", b"\tfrom b: c\r\n", b" by x from y\r\n", b"X-Fr: from\r\n",
        b"From: lf\n", b" from cont\n", b"Received: by z\n", b"fRoM :\r\n", b"\n",
        b" from: x\r\n", b"\tFROM:y\n",
    ]  # fmt: skip
    rng = random.Random(7)
    found = lone_cr = 0
    for _ in range(8000):
        data = b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 10)))
        data += rng.choice([b"", b"\r\nbody\r\n", b"\r\nFrom: body\r\n", b"\nfrom: x\n"])
        lone_cr += b"\r" in data.replace(b"\r\n", b"")
        for names in NAMES:
            expected = _expected(data, names)
            assert fields_named(data, names) == expected, (data, names)
            assert fields_named(data, names, lower_head(data)) == expected, (data, names)
            found += bool(expected)
    assert found > 8000  # named fields were there to be found
    assert 1000 < lone_cr < 7000  # both ways of reading lines were taken


def test_transaction_fields_named_with_and_without_header_fields() -> None:
    data = b"From: a@b\r\nDKIM-Signature: d=x\r\nSubject: s\r\nfrom: c@d\r\n\r\nbody\r\n"
    tx = Transaction(Session(client_ip="192.0.2.1"), data=data)
    assert tx.fields_named("from") == (("From", "a@b"), ("from", "c@d"))
    assert tx.fields_named("authentication-results") == ()
    assert tx.header_fields == header_fields(data)
    assert tx.fields_named("dkim-signature", "subject") == (
        ("DKIM-Signature", "d=x"),
        ("Subject", "s"),
    )
    tx.data = b"Subject: other\r\n\r\n"  # a new message: nothing kept from the old one
    assert tx.fields_named("from") == ()
    assert tx.fields_named("subject") == (("Subject", "other"),)
