"""Fuzzing the MIME parser: any bytes parse without raising, and hostile
content next to a known message never hides that message from the checks.

Properties (Hypothesis; budget from the profile in ``conftest.py``):

- ``parse_message`` returns for any bytes, with headers, text, URLs and
  attachments of the types the checks expect;
- a known message with a hostile header, a hostile extra part or hostile
  nesting added keeps its From, its URL and its ``invoice.pdf.exe``
  attachment, and whenever the parser records a failure the attachments
  check scores ``PARSE_FAILED``.
"""

from __future__ import annotations

import asyncio
import base64

from hypothesis import given
from hypothesis import strategies as st

from authfakes import make_tx, names
from mailmoat.checks.attachments import BAD_EXTENSIONS, ArchiveLimits, AttachmentsCheck
from mailmoat.core.symbols import Evidence
from mailmoat.message import ParseLimits, parse_message

# How the parser names a failure (message/parse.py): each must be scored.
FAILURES = ("parser_failed:", "part_failed:", "part_lost:", "headers_failed:")

SMALL_LIMITS = ParseLimits(max_depth=8, max_parts=50)

# Bytes a hostile sender would pick from: MIME syntax, encoded words, line
# ends of every kind, NUL and 8-bit bytes.
MIME_TOKENS = [
    b"\r\n",
    b"\n",
    b"\r",
    b"\x00",
    b"\xff",
    b"--",
    b"=?",
    b"?=",
    b"?B?",
    b"?Q?",
    b"undefined",
    b"idna",
    b"utf-8",
    b"Content-Type: ",
    b"multipart/mixed; boundary=",
    b"message/rfc822",
    b"Content-Transfer-Encoding: ",
    b"base64",
    b"quoted-printable",
    b"filename*=",
    b"''%ff",
    b'"',
    b";",
    b"=",
    b"http://",
    b"<a href=",
]
hostile_bytes = st.one_of(
    st.binary(max_size=2000),
    st.lists(st.sampled_from(MIME_TOKENS) | st.binary(max_size=8), max_size=80).map(b"".join),
)


@given(hostile_bytes)
def test_any_bytes_parse_without_raising(data: bytes) -> None:
    parsed = parse_message(data)
    assert isinstance(parsed.headers, list)
    assert all(isinstance(n, str) and isinstance(v, str) for n, v in parsed.headers)
    assert isinstance(parsed.text, str) and isinstance(parsed.urls, list)
    for attachment in parsed.attachments:
        assert isinstance(attachment.filename, str)


@given(hostile_bytes)
def test_any_bytes_parse_within_small_limits(data: bytes) -> None:
    parsed = parse_message(data * 3, SMALL_LIMITS)
    assert parsed.parts_count <= SMALL_LIMITS.max_parts + 1


def known_message(extra_header: bytes, extra_part: bytes) -> bytes:
    return (
        b"From: Billing <billing@sender.test>\r\n"
        b"Subject: Your invoice\r\n" + extra_header + b"MIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed; boundary=XX\r\n"
        b"\r\n"
        b"--XX\r\n"
        b"Content-Type: text/plain\r\n"
        b"\r\n"
        b"Pay here: http://pay.sender.test/invoice\r\n" + extra_part + b"--XX\r\n"
        b"Content-Type: application/octet-stream\r\n"
        b"Content-Disposition: attachment; filename=invoice.pdf.exe\r\n"
        b"Content-Transfer-Encoding: base64\r\n"
        b"\r\n"
        b"TVqQAAMAAAAEAAAA\r\n"
        b"--XX--\r\n"
    )


def one_line(data: bytes) -> bytes:
    return data.replace(b"\r", b" ").replace(b"\n", b" ")


header_values = st.one_of(
    hostile_bytes.map(one_line),
    st.sampled_from([b"undefined", b"idna", b"punycode", b"utf-8", b"x-unknown"]).flatmap(
        lambda charset: st.binary(max_size=12).map(
            lambda raw: b"=?" + charset + b"?B?" + base64.b64encode(raw) + b"?="
        )
    ),
)
extra_parts = hostile_bytes.filter(lambda b: b"--XX" not in b and b"\n--" not in b).map(
    lambda body: b"--XX\r\n" + body + b"\r\n"
)


@given(
    header=st.none() | header_values,
    part=st.none() | extra_parts,
    depth=st.integers(min_value=0, max_value=40),
)
def test_hostile_content_never_hides_the_known_message(
    header: bytes | None, part: bytes | None, depth: int
) -> None:
    extra_header = b"X-Note: " + header + b"\r\n" if header is not None else b""
    extra_part = part or b""
    if depth:
        extra_part += b"--XX\r\nContent-Type: multipart/mixed; boundary=d0\r\n\r\n"
        for level in range(1, depth):
            extra_part += b"--d%d\r\nContent-Type: multipart/mixed; boundary=d%d\r\n\r\n" % (
                level - 1,
                level,
            )
    data = known_message(extra_header, extra_part)
    parsed = parse_message(data, SMALL_LIMITS)
    assert parsed.header("From") == "Billing <billing@sender.test>"
    assert parsed.header("Subject") == "Your invoice"
    assert "http://pay.sender.test/invoice" in parsed.urls
    assert "invoice.pdf.exe" in [a.filename for a in parsed.attachments]
    evidence = Evidence()
    asyncio.run(AttachmentsCheck(BAD_EXTENSIONS, ArchiveLimits()).run(make_tx(data), evidence))
    symbols = names(evidence)
    failures = [d for d in parsed.defects if d.startswith(FAILURES) or d == "header_undecodable"]
    if failures:
        assert symbols.get("PARSE_FAILED", 0) > 0, (failures, symbols)
    else:
        assert "PARSE_FAILED" not in symbols, (parsed.defects, symbols)
