"""Breaking the MIME parser never lets a message past the content checks.

One undecodable header (``=?undefined?B?/w==?=``, charsets ``idna`` or
``punycode``) or a thousand nested multiparts used to make the parser fall
back to the raw body: no header, attachment or URL reached any check, and an
executable that scored 10 scored 0. Now a failure degrades only what it
touches, the rest is still read, and ``PARSE_FAILED`` scores the failure.
"""

from __future__ import annotations

import asyncio
import base64
import smtplib
import struct
import time
from pathlib import Path

import pytest

from authfakes import make_tx, names
from gateway_harness import GatewayThread
from mailmoat.checks.attachments import BAD_EXTENSIONS, ArchiveLimits, AttachmentsCheck
from mailmoat.core.symbols import Evidence
from mailmoat.delivery.quarantine import Quarantine
from mailmoat.message import parse_message
from mailmoat.message.fallback import split_tree
from mailmoat.message.parse import DEFAULT_LIMITS, _Walker

PE = b"MZ" + b"\0" * 58 + struct.pack("<I", 64) + b"PE\0\0" + b"\0" * 200
PE_BASE64 = base64.encodebytes(PE).replace(b"\n", b"\r\n")


def invoice(extra_header: bytes = b"", disposition: bytes = b"filename=invoice.pdf.exe") -> bytes:
    return (
        b"From: Billing <billing@sender.test>\r\n"
        b"To: bob@example.org\r\n"
        b"Subject: Your invoice\r\n"
        b"Date: Sat, 28 Nov 2026 10:00:00 +0000\r\n"
        b"Message-ID: <invoice-1@sender.test>\r\n" + extra_header + b"MIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed; boundary=XX\r\n"
        b"\r\n"
        b"--XX\r\n"
        b"Content-Type: text/plain\r\n"
        b"\r\n"
        b"Pay here: http://pay.sender.test/invoice\r\n"
        b"--XX\r\n"
        b"Content-Type: application/octet-stream\r\n"
        b"Content-Disposition: attachment; " + disposition + b"\r\n"
        b"Content-Transfer-Encoding: base64\r\n"
        b"\r\n" + PE_BASE64 + b"--XX--\r\n"
    )


BAD_HEADERS = [
    b"X-Note: =?undefined?B?/w==?=\r\n",
    b"X-Note: =?idna?B?/w==?=\r\n",
    b"X-Note: =?punycode?B?/w==?=\r\n",
    b"X-Note: =?idna?Q?=FF?=\r\n",
    b"X-Note: =?raw_unicode_escape?Q?=5Cu?=\r\n",
    b"Subject: =?undefined?Q?=FF?=\r\n",
]


def nested(depth: int) -> bytes:
    out = (
        b"From: deep@sender.test\r\nSubject: deep\r\n"
        b"Content-Type: multipart/mixed; boundary=b0\r\n\r\n"
    )
    for level in range(1, depth):
        out += b"--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n" % (level - 1, level)
    out += b"--b%d\r\nContent-Type: text/plain\r\n\r\nhttp://deep.sender.test/\r\n" % (depth - 1)
    for level in reversed(range(depth)):
        out += b"--b%d--\r\n" % level
    return out


def attachment_symbols(data: bytes) -> dict[str, float]:
    evidence = Evidence()
    check = AttachmentsCheck(BAD_EXTENSIONS, ArchiveLimits())
    asyncio.run(check.run(make_tx(data), evidence))
    return names(evidence)


@pytest.mark.parametrize("header", BAD_HEADERS, ids=lambda h: h.decode().strip())
def test_an_odd_charset_in_one_header_degrades_that_header_only(header: bytes) -> None:
    parsed = parse_message(invoice(header))
    assert parsed.header("From") == "Billing <billing@sender.test>"
    assert parsed.header("Message-ID") == "<invoice-1@sender.test>"
    assert [a.filename for a in parsed.attachments] == ["invoice.pdf.exe"]
    assert parsed.attachments[0].payload == PE
    assert "http://pay.sender.test/invoice" in parsed.urls
    assert not [d for d in parsed.defects if d.startswith("parser_failed")]


@pytest.mark.parametrize("header", [b"", *BAD_HEADERS], ids=repr)
def test_the_executable_scores_the_same_with_a_bad_header(header: bytes) -> None:
    found = attachment_symbols(invoice(header))
    assert {"ATTACH_BAD_EXT", "ATTACH_DOUBLE_EXT", "ATTACH_EXECUTABLE"} <= set(found)


def test_an_undecodable_file_name_keeps_the_attachment_and_scores_the_failure() -> None:
    data = invoice(disposition=b"filename*=undefined''invoice.pdf%2Eexe")
    parsed = parse_message(data)
    assert [a.filename for a in parsed.attachments] == ["invoice.pdf.exe"]
    found = attachment_symbols(data)
    assert {"ATTACH_DOUBLE_EXT", "ATTACH_EXECUTABLE", "PARSE_FAILED"} <= set(found)
    assert found["PARSE_FAILED"] == 3.0


@pytest.mark.parametrize("depth", [1000, 5000])
def test_a_thousand_nested_multiparts_keep_headers_and_score(depth: int) -> None:
    data = nested(depth)
    started = time.monotonic()
    parsed = parse_message(data)
    assert time.monotonic() - started < 5
    assert parsed.header("From") == "deep@sender.test"
    assert parsed.subject == "deep"
    assert "depth_truncated" in parsed.defects
    assert "parser_failed:RecursionError" in parsed.defects
    found = attachment_symbols(data)
    assert found["PARSE_FAILED"] == 3.0 and found["MIME_TOO_DEEP"] == 1.0


def test_nesting_within_the_limit_still_reaches_the_deepest_text() -> None:
    parsed = parse_message(nested(10))
    assert "http://deep.sender.test/" in parsed.urls
    assert not parsed.defects


def test_a_clean_message_has_no_parse_failure() -> None:
    assert "PARSE_FAILED" not in attachment_symbols(invoice())


@pytest.mark.parametrize("header", [b"", BAD_HEADERS[0]], ids=["clean", "bad header"])
def test_gateway_quarantines_the_executable_with_or_without_the_bad_header(
    tmp_path: Path, header: bytes
) -> None:
    # SpamAssassin's stock rules off: the scores are the attachment check's.
    overrides: dict[str, dict[str, object]] = {
        "actions": {"quarantine": 8.0},
        "rules": {"sa_default": False},
    }
    with GatewayThread(tmp_path, overrides) as gateway:
        with smtplib.SMTP("127.0.0.1", gateway.port, timeout=30) as client:
            client.ehlo("client.sender.test")
            client.sendmail("billing@sender.test", ["bob@example.org"], invoice(header))
        assert gateway.maildir_messages() == []
    [held] = Quarantine(tmp_path / "quarantine").list()
    assert held.score >= 10
    assert {"ATTACH_DOUBLE_EXT", "ATTACH_EXECUTABLE"} <= set(held.symbols)


FORWARDED = (
    b"From: a@sender.test\r\nSubject: fwd\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="outer"\r\n\r\npreamble\r\n'
    b"--outer\r\nContent-Type: text/plain; charset=utf-8\r\n\r\ncaf\xc3\xa9 http://one.test/\r\n"
    b"--outer\r\nContent-Type: message/rfc822\r\n\r\n"
    b'From: b@sender.test\r\nContent-Type: multipart/alternative; boundary="inner"\r\n\r\n'
    b"--inner\r\nContent-Type: text/html\r\n\r\n<a href='http://two.test/'>x</a>\r\n"
    b"--inner--\r\n"
    b"--outer--\r\nepilogue\r\n"
)


@pytest.mark.parametrize("message", [invoice(), FORWARDED, nested(10)], ids=["inv", "fwd", "n10"])
def test_the_recursion_free_split_reads_what_the_stdlib_parser_reads(message: bytes) -> None:
    body_offset = message.index(b"\r\n\r\n") + 4
    walked = _Walker(message, body_offset, DEFAULT_LIMITS, []).run(
        split_tree(message, DEFAULT_LIMITS.max_depth, DEFAULT_LIMITS.max_parts)
    )
    expected = parse_message(message)
    assert walked.headers == expected.headers
    assert walked.attachments == expected.attachments
    assert walked.urls == expected.urls and walked.urls
    assert walked.part_types == expected.part_types
    assert walked.text.strip() == expected.text.strip()
