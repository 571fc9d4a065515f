"""The native evals: the transfer encodings are what SpamAssassin's regex finds."""

from __future__ import annotations

import random
import re

from mailmoat.rules import evals

PIECES = [
    b"Content-Transfer-Encoding:", b"content-transfer-encoding: ", b"CONTENT-TRANSFER-ENCODING:\t",
    b"quoted-printable", b"QUOTED-Printable", b"base64", b"BASE64", b"\n", b"\r\n", b" ", b"\t",
    b"X-", b"text", b"\n ", b"7bit",
]  # fmt: skip


def test_transfer_encodings_are_those_of_the_regex() -> None:
    rng = random.Random(7)
    seen = set()
    for _ in range(3000):
        raw = b"".join(rng.choice(PIECES) for _ in range(rng.randint(0, 10)))
        found = evals.transfer_encodings(raw)
        for name in evals.ENCODINGS:
            pattern = rb"^content-transfer-encoding:[ \t]*" + name
            expected = re.search(pattern, raw, re.I | re.M) is not None
            assert (name in found) == expected, raw
            seen.add((name, expected))
    assert len(seen) == 4  # each name both found and not
