"""The multipart fast path against the stdlib's full parse, on random trees.

Each message is built from pieces chosen to hit the cases the fast path must
refuse (missing or doubled delimiters, near-miss delimiter lines, bare CRs,
mixed line ends, header lines without a colon, digests, nested messages,
encoded multiparts) as well as those it takes; whichever path runs, the
``ParsedMessage`` must equal the one of the full parse.
"""

from __future__ import annotations

import random
import re

import pytest

from mailmoat.core.headers import parse_header_block
from mailmoat.message import fastpath, parse_message
from mailmoat.message.parse import _parse

_PART_HEADERS = [
    b"",
    b"Content-Type: text/plain\n",
    b"Content-Type: text/html; charset=utf-8\n",
    b"Content-Type: application/pdf; name=a.pdf\nContent-Transfer-Encoding: base64\n",
    b"Content-Disposition: attachment; filename=x.txt\n",
    b"Content-Type: message/rfc822\n",
    b"X-No-Colon\n",
    b"From x@y z\nContent-Type: text/plain\n",
    b"Content-Type: text/plain;\n charset=iso-8859-1\n",
    b"Content-Type: TEXT/PLAIN\n",
]
_BODIES = [
    b"",
    b"hello http://a.example/x\n",
    b"line one\nline two\n\n",
    b"<p>caf\xe9 <a href='http://b.example'>x</a></p>\n",
    b"JVBERi0xLjQK\n",
    b"--not-a-delimiter\n",
    b"\x00nul\n",
    b"Subject: inner\n\ninner body\n",
    b"trailing blanks \t\n",
]


def _tree(rng: random.Random, depth: int) -> bytes:
    boundary = rng.choice([b"b", b"=_x", b"b--", b"q'1", b"b b"])
    subtype = rng.choice([b"mixed", b"alternative", b"related", b"digest", b"mixed"])
    quoted = rng.random() < 0.5
    head = b"Content-Type: multipart/" + subtype + b"; boundary="
    head += (b'"' + boundary + b'"' if quoted else boundary) + b"\n"
    if rng.random() < 0.05:
        head += b"Content-Transfer-Encoding: base64\n"
    body = rng.choice([b"", b"preamble\n", b"pre\n\n"])
    delimiter = b"--" + boundary
    for _ in range(rng.randint(0, 4)):
        body += delimiter + rng.choice([b"", b"", b" ", b"\t ", b"x"]) + b"\n"
        if rng.random() < 0.05:
            body += delimiter + b"\n"  # a doubled delimiter line
        if depth < 2 and rng.random() < 0.25:
            body += _tree(rng, depth + 1)
        else:
            body += rng.choice(_PART_HEADERS) + rng.choice([b"\n", b"\n", b""])
            body += rng.choice(_BODIES)
    if rng.random() < 0.9:
        body += delimiter + b"--" + rng.choice([b"", b"", b"  ", b"x"]) + b"\n"
    body += rng.choice([b"", b"epilogue\n", b"\n"])
    return head + b"\n" + body


def _message(rng: random.Random) -> bytes:
    raw = b"Subject: t\nMIME-Version: 1.0\n" + _tree(rng, 0)
    line_end = rng.random()
    if line_end < 0.45:
        raw = raw.replace(b"\n", b"\r\n")
    elif line_end < 0.5:
        raw = raw.replace(b"\n", b"\r\n", rng.randint(1, 8))  # mixed
    if rng.random() < 0.03:
        raw = raw.replace(b"e", b"e\r", 1)  # a bare CR
    if rng.random() < 0.2:
        raw = b"From a@b Mon Dec  7 19:00:00 2026\n" + raw
    return raw


def test_random_multiparts_parse_as_the_full_parse() -> None:
    rng = random.Random(2026)
    fast = 0
    for _ in range(3000):
        raw = _message(rng)
        expected = _parse(raw, None, None, fast=False)
        assert parse_message(raw) == expected, raw
        assert parse_message(raw, head=parse_header_block(raw)) == expected, raw
        data = raw[raw.find(b"\n") + 1 :] if raw.startswith(b"From ") else raw
        split = fastpath.split_message(data, fastpath.header_separator(data), None)
        fast += split is not None and split[1] is None
    assert fast > 150  # the multipart path is exercised, not only refused


@pytest.mark.parametrize(
    ("raw", "taken"),
    [
        (b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n", True),
        (b"Content-Type: multipart/mixed; boundary=b\n\n--b\nA: 1\n\nx\n--b \n\ny\n--b--\n", True),
        (b"Content-Type: multipart/mixed; boundary=b\n\n--b--\n", False),  # close first
        (b"Content-Type: multipart/mixed; boundary=b\n\n--b\n\nx\n", True),  # no close
        (b"Content-Type: multipart/mixed; boundary=b\n\n--b\n\nx", True),  # nor line end
        (b"Content-Type: multipart/mixed; boundary=b\n\n--b\nA: 1\n", False),
        (
            b"Content-Type: multipart/mixed; boundary=b\nContent-Transfer-Encoding: base64\n\n"
            b"--b\n\nx\n--b--\n",
            True,
        ),
        (b"Content-Type: multipart/mixed; boundary=b\n\n--b\n--b\n\nx\n--b--\n", False),
        (b"Content-Type: multipart/mixed; boundary=b\n\n--b\nno colon\n\nx\n--b--\n", False),
        (b"Content-Type: multipart/mixed; boundary=b\n\n--b\nA: 1\nx\n--b--\n", False),
        (b"Content-Type: multipart/mixed\n\n--b\n\nx\n--b--\n", False),  # no boundary
        (b"Content-Type: multipart/mixed; boundary=b\n\nno delimiter\n", False),
        (
            b"Content-Type: multipart/mixed; boundary=b\n\n--b\n"
            b"Content-Type: message/rfc822\n\nSubject: x\n\ny\n--b--\n",
            False,
        ),
    ],
)
def test_multipart_fast_path_taken_only_when_plain(raw: bytes, taken: bool) -> None:
    split = fastpath.split_message(raw, fastpath.header_separator(raw), None)
    assert (split is not None) is taken
    assert parse_message(raw) == _parse(raw, None, None, fast=False)


def test_header_separator_is_the_first_match_of_the_blank_line_regex() -> None:
    reference = re.compile(rb"\r?\n\r?\n")
    rng = random.Random(5)
    for _ in range(20000):
        data = bytes(rng.choice(b"\r\nab") for _ in range(rng.randint(0, 12)))
        match = reference.search(data)
        expected = (match.start(), match.end()) if match else None
        assert fastpath.header_separator(data) == expected, data
