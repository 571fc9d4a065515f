"""parse_message: decoding, HTML, URLs, attachments and hostile input."""

from __future__ import annotations

import base64
import pickle
import time
from datetime import datetime

import pytest

from mailmoat.message import ParseLimits, parse_message


def mail(headers: str, body: str = "body\n") -> bytes:
    return (headers.strip("\n") + "\n\n" + body).encode("latin-1")


def multipart(parts: list[str], boundary: str = "BOUND", extra: str = "") -> bytes:
    body = "".join(f"--{boundary}\n{p}\n" for p in parts) + f"--{boundary}--\n"
    head = f'Subject: m\nContent-Type: multipart/mixed; boundary="{boundary}"\n{extra}'
    return mail(head, body)


@pytest.mark.parametrize(
    ("label", "header", "expected"),
    [
        ("plain", "Subject: hello there", "hello there"),
        ("b-word", "Subject: =?utf-8?B?w6nDqMOg?=", "éèà"),
        ("q-word", "Subject: =?iso-8859-1?Q?caf=E9_au_lait?=", "café au lait"),
        ("adjacent words join", "Subject: =?utf-8?Q?a?= =?utf-8?Q?b?=", "ab"),
        ("folded", "Subject: one\n two", "one two"),
        ("unknown charset", "Subject: =?x-nope?Q?caf=E9?=", "café"),
        ("broken base64", "Subject: x =?utf-8?B?###?= y", "x  y"),
        ("raw 8-bit utf-8", "Subject: caf\xc3\xa9", "café"),
        ("raw 8-bit latin-1", "Subject: caf\xe9", "café"),
    ],
)
def test_header_decoding(label: str, header: str, expected: str) -> None:
    assert parse_message(mail(header)).subject == expected, label


def test_envelope_line_headers_and_derived_fields() -> None:
    raw = b"From a@b  Tue Jul 31 22:36:21 2001\n" + mail(
        "From: Joe <Joe@Example.COM>\nTo: x@y\nMessage-ID: <id@h>\n"
        "Date: Tue, 31 Jul 2001 21:36:20 +0000\nX-A: 1\nX-A: 2",
        "hi\n",
    )
    message = parse_message(raw)
    assert message.raw.startswith(b"From: Joe")
    assert message.from_addr == "joe@example.com"
    assert message.message_id == "<id@h>"
    assert isinstance(message.date, datetime)
    assert message.header("x-a") == "1" and message.header_all("X-A") == ["1", "2"]
    assert [n for n, _ in message.headers] == ["From", "To", "Message-ID", "Date", "X-A", "X-A"]
    assert message.body == b"hi\n"
    assert message.header("missing") is None


def test_bad_date_is_none() -> None:
    assert parse_message(mail("Date: yesterday-ish")).date is None


def test_transfer_encodings_and_charsets() -> None:
    b64 = base64.b64encode("Grüße aus Köln".encode("iso-8859-1")).decode()
    raw = multipart(
        [
            "Content-Type: text/plain; charset=iso-8859-1\n"
            f"Content-Transfer-Encoding: base64\n\n{b64}",
            "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n"
            "\nna=C3=AFve =\nsoft break",
            "Content-Type: text/plain; charset=bogus-42\n\nstill text",
        ]
    )
    message = parse_message(raw)
    assert "Grüße aus Köln" in message.text
    assert "naïve soft break" in message.text
    assert "still text" in message.text
    assert message.parts_count == 4
    assert message.charsets == ["iso-8859-1", "utf-8", "bogus-42"]


@pytest.mark.parametrize(
    ("charset", "text"),
    [
        ("iso-8859-1", "Grüße aus Köln"),
        ("koi8-r", "Привет, мир"),
        ("windows-1251", "Привет, мир"),
        ("", "Café crème"),  # no charset: the cp1252 fallback
    ],
)
@pytest.mark.parametrize("compound", [False, True])
def test_8bit_bodies_decode_by_their_charset(charset: str, text: str, compound: bool) -> None:
    # The raw 8-bit bytes reach the charset decoding: compat32's get_payload()
    # would have decoded them already (latin-1 text came back as mojibake, and
    # without a charset every 8-bit byte as U+FFFD).
    content_type = f"Content-Type: text/plain; charset={charset}\n" if charset else ""
    body = (text + "\n").encode(charset or "cp1252")
    head = content_type + "Content-Transfer-Encoding: 8bit\n"
    if compound:
        raw = (
            b'Subject: m\nContent-Type: multipart/mixed; boundary="B"\n\n--B\n'
            + head.encode()
            + b"\n"
            + body
            + b"--B--\n"
        )
    else:
        raw = b"Subject: m\n" + head.encode() + b"\n" + body
    assert parse_message(raw).text.strip() == text
    assert parse_message(raw.replace(b"\n", b"\r\n")).text.strip() == text


def test_html_reduced_to_text_with_links() -> None:
    html = (
        "<html><head><style>p {color: red}</style></head><body>"
        "<p>V<!-- x -->iag<b></b>ra &amp; more</p><script>evil()</script>"
        "<a href=\"http://Example.COM/buy?x=1\">click</a><img src='//cdn.example.net/i.gif'>"
        '<a href="mailto:sales@shop.example">mail</a></body></html>'
    )
    message = parse_message(mail("Content-Type: text/html", html))
    assert message.html_text.splitlines() == ["Viagra & more", "clickmail"]
    assert "evil" not in message.html_text and "color" not in message.html_text
    assert message.urls == ["http://example.com/buy?x=1", "http://cdn.example.net/i.gif"]
    assert message.domains == ["example.com", "cdn.example.net", "shop.example"]
    assert message.text == ""


@pytest.mark.parametrize(
    ("label", "text", "url", "host"),
    [
        ("scheme", "see http://www.Example.com/a.", "http://www.example.com/a", "www.example.com"),
        ("hxxp", "hxxp://bad.example.org/x", "http://bad.example.org/x", "bad.example.org"),
        (
            "brackets",
            "go to evil[.]example[.]com now",
            "http://evil.example.com",
            "evil.example.com",
        ),
        ("dot word", "evil(dot)example(dot)net", "http://evil.example.net", "evil.example.net"),
        (
            "userinfo",
            "http://paypal.com@phish.example.ru/login",
            "http://phish.example.ru/login",
            "phish.example.ru",
        ),
        (
            "percent host",
            "http://%65vil.example.com/",
            "http://evil.example.com/",
            "evil.example.com",
        ),
        ("decimal ip", "http://3232235777/x", "http://192.168.1.1/x", "192.168.1.1"),
        ("port", "https://example.com:8443/p", "https://example.com/p", "example.com"),
        ("bare www", "(www.example.biz)", "http://www.example.biz", "www.example.biz"),
        ("bare domain", "visit cheap-pills.com today", "http://cheap-pills.com", "cheap-pills.com"),
    ],
)
def test_url_extraction(label: str, text: str, url: str, host: str) -> None:
    message = parse_message(mail("Subject: u", text + "\n"))
    assert url in message.urls, (label, message.urls)
    assert host in message.domains, label


def test_attachments_listed_and_bounded() -> None:
    payload = bytes(range(256)) * 100
    b64 = base64.encodebytes(payload).decode()
    raw = multipart(
        [
            "Content-Type: text/plain\n\nsee attached",
            'Content-Type: application/pdf; name="=?utf-8?Q?r=C3=A9sum=C3=A9.pdf?="\n'
            'Content-Disposition: attachment; filename="=?utf-8?Q?r=C3=A9sum=C3=A9.pdf?="\n'
            f"Content-Transfer-Encoding: base64\n\n{b64}",
            'Content-Type: text/plain\nContent-Disposition: attachment; filename="notes.txt"\n\nx',
        ]
    )
    message = parse_message(raw, ParseLimits(max_attachment_bytes=1000))
    assert message.text == "see attached"
    pdf, notes = message.attachments
    assert (pdf.filename, pdf.content_type, pdf.size) == ("résumé.pdf", "application/pdf", 25600)
    assert pdf.payload == payload[:1000]
    assert (notes.filename, notes.content_type) == ("notes.txt", "text/plain")


def _bounded(raw: bytes, limits: ParseLimits | None = None, seconds: float = 5.0) -> list[str]:
    started = time.monotonic()
    message = parse_message(raw, limits)
    assert time.monotonic() - started < seconds
    return message.defects


def test_deep_nesting_is_cut() -> None:
    depth = 400
    head = "".join(
        f'Content-Type: multipart/mixed; boundary="b{i}"\n\n--b{i}\n' for i in range(depth)
    )
    tail = "".join(f"\n--b{i}--" for i in reversed(range(depth)))
    raw = ("Subject: deep\n" + head + "Content-Type: text/plain\n\ninner" + tail).encode()
    defects = _bounded(raw)
    assert "depth_truncated" in defects or any(d.startswith("parser_failed") for d in defects)


def test_ten_thousand_parts_are_cut() -> None:
    raw = multipart(["Content-Type: text/plain\n\nx"] * 10_000)
    message = parse_message(raw)
    assert message.parts_count == ParseLimits().max_parts
    assert "parts_truncated" in message.defects


def test_huge_base64_is_bounded() -> None:
    blob = base64.encodebytes(b"A" * (12 * 1024 * 1024)).decode()
    raw = multipart(
        [f"Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n{blob}"]
    )
    limits = ParseLimits(max_part_bytes=1024 * 1024, max_attachment_bytes=4096)
    message = parse_message(raw, limits)
    (attachment,) = message.attachments
    assert attachment.size <= 1024 * 1024 and len(attachment.payload) == 4096
    assert "part_truncated" in message.defects


def test_input_size_is_bounded() -> None:
    raw = mail("Subject: big", "x" * 100_000)
    message = parse_message(raw, ParseLimits(max_input_bytes=1000))
    assert len(message.raw) == 1000 and "input_truncated" in message.defects


@pytest.mark.parametrize(
    ("label", "raw"),
    [
        ("empty", b""),
        ("only from line", b"From x"),
        ("nul bytes", b"Subject: a\x00b\n\n\x00\x00body\x00"),
        ("binary noise", bytes(range(256)) * 50),
        ("no body", b"Subject: x"),
        ("broken boundary", b'Content-Type: multipart/mixed; boundary="\n\n--\n--x--\n'),
        ("missing boundary", b"Content-Type: multipart/alternative\n\n--a\n\nx\n"),
        (
            "unterminated multipart",
            b'Content-Type: multipart/mixed; boundary="q"\n\n--q\nContent-Type: text/plain\n\nhalf',
        ),
        ("bad cte", b"Content-Transfer-Encoding: base64\n\n!!!!====####"),
        ("bad charset", b'Content-Type: text/plain; charset="\xff\xfe"\n\n\xff\xfe text'),
        ("utf-7 codec", b"Content-Type: text/plain; charset=utf-7\n\n+AGEAYgBj-"),
        ("rot13 codec", b"Content-Type: text/plain; charset=rot13\n\nuryyb"),
        ("bytes codec", b"Content-Type: text/plain; charset=base64\n\naGVsbG8="),
        ("header garbage", b": no name\n\x80\x81: \xff\n\nbody"),
        ("bad rfc2231", b"Content-Type: text/plain; name*0*=utf-8''%E2%82; name*1*=%AC\n\nx"),
        ("crlf", b"Subject: crlf\r\n\r\nline one\r\nline two\r\n"),
    ],
)
def test_malformed_input_never_raises(label: str, raw: bytes) -> None:
    message = parse_message(raw)
    assert isinstance(message.text, str), label
    assert message.body_offset <= len(message.raw)


def test_non_bytes_input_is_a_defect() -> None:
    message = parse_message(None)  # type: ignore[arg-type]
    assert "input_not_bytes" in message.defects


def test_hostile_html_is_linear() -> None:
    body = "<!--" * 50_000 + "<script" * 50_000 + "<a href=" * 20_000
    _bounded(mail("Content-Type: text/html", body), seconds=5.0)


def test_many_urls_are_capped() -> None:
    body = " ".join(f"http://h{i}.example.com/" for i in range(3000))
    message = parse_message(mail("Subject: u", body))
    assert len(message.urls) == ParseLimits().max_urls
    assert "urls_truncated" in message.defects


# The fast path (single-part root: body sliced from the input, headers from a
# header-only parse or from the caller's) against the full stdlib parse.
FAST_PATH_CASES: list[tuple[str, bytes]] = [
    ("plain", b"Subject: hi\nFrom: a@b\n\nbody line\nhttp://x.example/\n"),
    ("bare cr in header", b"Subject: a\rX: b\n\nbody\n"),
    ("bare cr before separator", b"Subject: a\r\r\n\r\nbody\r\n\r\nmore\r\n"),
    ("bare cr line", b"Subject: a\n\rX: b\n\nbody\n"),
    ("bare cr at end", b"Subject: a\n\r"),
    ("bare cr in body", b"Subject: a\n\nbo\rdy\r\rx\n"),
    ("no blank line", b"Subject: a\nX: b\nbody text without colon\n"),
    ("no blank line, no body", b"Subject: a\nX: b\n"),
    ("empty body", b"Subject: a\n\n"),
    ("header only, no line end", b"Subject: a"),
    ("empty", b""),
    ("blank first line", b"\nbody\n\nmore\n"),
    ("crlf first line", b"\r\nX: y\r\n\r\nbody\r\n"),
    ("continuation lines", b"Subject: a\n  folded\n\tmore\nX: b\n\nbody\n"),
    ("continuation first", b" leading\nSubject: a\n\nbody\n"),
    (
        "8-bit headers and body",
        "Subject: caf\xe9\nFrom: J\xf6rg <j@x>\n\nb\xe9dy\n".encode("latin-1"),
    ),
    ("8-bit body, charset", b"Content-Type: text/plain; charset=iso-8859-1\n\nb\xe9dy\n"),
    (
        "8-bit body, rfc 2231 charset",
        b"Content-Type: text/plain; charset*=us-ascii''utf-8\n\n\xc3\xa9\n",
    ),
    ("nul bytes", b"Subject: a\x00b\nX\x00: y\n\n\x00body\x00\n"),
    ("8-bit line, no colon", b"Content-Type: a/b; charset*=x''y\nno colon \xe9\n\nbody\n"),
    ("line without colon", b"Subject: a\nthis line has no colon\nX: b\n\nbody\n"),
    ("empty header name", b": empty\nSubject: a\n\nbody\n"),
    ("from line first", b"From a@b Tue Jul 31 22:36:21 2001\nSubject: a\n\nbody\n"),
    ("two from lines", b"From a@b x\nFrom c@d y\nSubject: a\n\nbody\n"),
    ("from line inside", b"Subject: a\nFrom x@y z\nX: b\n\nbody\n"),
    ("multipart", b'Content-Type: multipart/mixed; boundary="b"\n\n--b\n\nhi\n--b--\n'),
    ("multipart, no boundary", b"Content-Type: multipart/alternative\n\n--a\n\nx\n"),
    ("multipart, odd case", b'Content-Type: MULTIPART/Mixed; BOUNDARY="q"\n\n--q\n\nx\n--q--\n'),
    ("multipart, folded", b"Content-Type:\n multipart/mixed;\n boundary=b\n\n--b\n\nx\n--b--\n"),
    ("message/rfc822", b"Content-Type: message/rfc822\n\nSubject: inner\n\ninner body\n"),
    ("delivery-status", b"Content-Type: message/delivery-status\n\nA: x\n\nB: y\n"),
    ("text/html, odd case", b'Content-Type: Text/HTML; Charset="ISO-8859-1"; x=y\n\n<p>\xe9</p>\n'),
    ("type without slash", b"Content-Type: multipart\n\nbody\n"),
    ("type twice", b"Content-Type: text/plain\nContent-Type: multipart/mixed; boundary=b\n\nx\n"),
    ("base64", b"Content-Transfer-Encoding: base64\n\nY2Fmw6k=\n"),
    ("named attachment", b'Content-Type: application/pdf; name="a.pdf"\n\n%PDF\n'),
    ("mixed line ends", b"Subject: a\r\nX: b\n\r\nbody\r\n"),
    ("lf separator, crlf body", b"Subject: a\n\nbody\r\n\r\nmore\n"),
    ("long header block", (b"X-Long: " + b"v" * 9000 + b"\n") * 2 + b"Subject: a\n\nbody\n"),
]


def _crlf(raw: bytes) -> bytes:
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


@pytest.mark.parametrize("line_end", ["lf", "crlf"])
@pytest.mark.parametrize(("label", "raw"), FAST_PATH_CASES)
def test_fast_path_matches_full_parse(label: str, raw: bytes, line_end: str) -> None:
    from mailmoat.core.headers import parse_header_block
    from mailmoat.message.parse import _parse

    data = _crlf(raw) if line_end == "crlf" else raw
    full = _parse(data, None, None, fast=False)
    assert parse_message(data) == full, label
    head = parse_header_block(data)
    before = pickle.dumps(head)
    assert parse_message(data, head=head) == full, label
    assert pickle.dumps(head) == before, label  # the shared head is left as it was


@pytest.mark.parametrize(
    ("raw", "fast"),
    [
        (b"Subject: a\r\n\r\nbody\r\n", True),
        (b"Subject: a\n\nb\xe9dy\n", True),
        (b"Subject: a\nno colon\n\nbody\n", False),
        (b"Subject: a\r\r\n\r\nbody\r\n", False),
        (b'Content-Type: multipart/mixed; boundary="b"\n\n--b\n\nx\n--b--\n', True),
        (b'Content-Type: multipart/mixed; boundary="b"\n\n--b\n\nx\n', True),  # no close
        (b'Content-Type: multipart/mixed; boundary="b"\n\n--b\n', False),  # nothing after
        (b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\n\nx\r\n--b--\r\n', False),
        (b"Content-Type: multipart/digest; boundary=b\n\n--b\n\nx\n--b--\n", False),
        (b"Content-Type: message/rfc822\n\nSubject: inner\n\nx\n", False),
    ],
)
def test_fast_path_taken_only_when_safe(
    raw: bytes, fast: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mailmoat.message import parse

    full_parses: list[bytes] = []
    real = parse._full_parse

    def spy(data: bytes) -> object:
        full_parses.append(data)
        return real(data)

    monkeypatch.setattr(parse, "_full_parse", spy)
    parse_message(raw)
    assert (not full_parses) is fast


def test_head_used_only_when_it_fits() -> None:
    from mailmoat.core.headers import parse_header_block
    from mailmoat.message.fastpath import Given, head_fits, header_separator

    def fits(data: bytes) -> bool:
        separator = header_separator(data)
        offset = separator.end if separator else len(data)
        return head_fits(data, offset, Given(data, 0, parse_header_block(data)))

    assert fits(b"Subject: a\r\nX: b\r\n\r\nbody\r\n")
    assert not fits(b"Subject: a\nX: b\n\nbody\r\n\r\n")  # LF block: header_end differs
    assert not fits(b"Subject: a\r\n\nbody\r\n\r\n")  # an earlier, LF-only separator
    assert not fits(b"Subject: a\r\r\n\r\nbody\r\n")  # bare CR: a blank line sooner
    assert not fits(b"Subject: a\rX: b\r\n\r\nbody\r\n")
    assert not fits(b"\r\nX: y\r\n\r\nbody\r\n")  # header_end is 0
    assert not fits(b"Subject: a\r\nno colon\r\n\r\nbody\r\n")


@pytest.mark.parametrize(
    ("raw", "reused"),
    [
        (b"From a@b Tue Jul 31 22:36:21 2001\r\nSubject: a\r\n\r\nbody\r\n", True),
        (b"Subject: a\r\nX: b\r\n\r\nbody\r\n", True),
        (b"From a@b x\r\nFrom c@d y\r\nSubject: a\r\n\r\nbody\r\n", False),  # two envelopes
        (b"From a@b x\rz\r\nSubject: a\r\n\r\nbody\r\n", False),  # bare CR in the envelope
        (b"From a@b x\r\n\r\nSubject: a\r\n\r\nbody\r\n", False),  # no header block
        (b"From a@b x\nSubject: a\n\nbody\n", False),  # LF: header_end finds no CRLF CRLF
    ],
)
def test_head_behind_an_envelope_line_is_reused(
    raw: bytes, reused: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mailmoat.core.headers import parse_header_block
    from mailmoat.message import fastpath, parse

    head = parse_header_block(raw)
    expected = parse._parse(raw, None, None, fast=False)
    splits: list[bytes] = []
    real = fastpath.plain_header_block

    def spy(block: bytes) -> object:
        splits.append(block)
        return real(block)

    monkeypatch.setattr(fastpath, "plain_header_block", spy)
    assert parse_message(raw, head=head) == expected
    assert (not splits) is reused


@pytest.mark.parametrize(
    "raw",
    [
        b"Subject: a\n\nbody\n",
        b"CONTENT-TYPE: Text/HTML ; charset=x\ncontent-type: text/plain\n\nx\n",
        b"Content-Type: text\nContent-Disposition: attachment\n\nx\n",
        b"Content-Type: a/b/c\nContent-Transfer-Encoding: base64\n\nx\n",
        b"Content-Type: text/pl\xe9in; name=\xe9\nContent-Disposition: \xff\n\nx\n",
        b"Content-Type: multipart/digest; boundary=b\n\n--b\n\nSubject: x\n\ny\n--b--\n",
    ],
)
def test_leaf_fields_read_as_message_get_reads_them(raw: bytes) -> None:
    from email.message import Message

    from mailmoat.message.parse import _Fields, _full_parse

    parts: list[Message] = [_full_parse(raw)]
    for part in parts:
        payload = part.get_payload()
        if isinstance(payload, list):
            parts.extend(payload)
        fields = _Fields(part)
        assert fields.content_type() == part.get_content_type()
        for name in ("Content-Type", "Content-Disposition", "Content-Transfer-Encoding"):
            assert str(fields.get(name.lower())) == str(part.get(name, ""))


def test_unfold_is_the_fold_regex_substitution() -> None:
    import random
    import re

    from mailmoat.message.decode import unfold

    fold = re.compile(r"\r?\n[ \t]*")
    rng = random.Random(7)
    for _ in range(20000):
        value = "".join(rng.choice("\r\n \tab") for _ in range(rng.randint(0, 12)))
        assert unfold(value) == fold.sub(" ", value), repr(value)


def test_link_search_of_joined_tags_is_the_search_tag_by_tag() -> None:
    import random

    from mailmoat.message.html import _LINK_ATTR, _OPEN_TAG, _links

    pieces = [
        "<a ", "<IMG ", "href", "HREF", "Src", "sRC", "action", "BackGround", "xhref", "_src",
        "=", " = ", '"', "'", "http://a.example/", "x y", ">", "<", " ", "\u017f", "\u212a", "\xe9",
    ]  # fmt: skip
    rng = random.Random(3)
    for _ in range(20000):
        source = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 14)))
        tags = _OPEN_TAG.findall(source)
        expected = [a or b or c for tag in tags for a, b, c in _LINK_ATTR.findall(tag)]
        assert _links(tags) == expected, source
