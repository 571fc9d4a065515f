"""Attachment checks: names, magic bytes, archives (bombs, encryption), macros, MIME limits."""

from __future__ import annotations

import asyncio
import base64
import io
import struct
import time
import zipfile
from urllib.parse import quote

import pytest

from authfakes import make_tx, names
from mailmoat.checks.attachments import (
    BAD_EXTENSIONS,
    ArchiveLimits,
    AttachmentsCheck,
    executable_kind,
    extensions,
)
from mailmoat.core.symbols import Evidence

PE = b"MZ" + b"\0" * 58 + struct.pack("<I", 64) + b"PE\0\0" + b"\0" * 200
ELF = b"\x7fELF\x02\x01\x01" + b"\0" * 100
OLE_VBA = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 200 + "_VBA_PROJECT".encode("utf-16-le")


def zip_of(members: dict[str, bytes], encrypted: set[str] = frozenset()) -> bytes:  # type: ignore[assignment]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    size = len(out.getvalue())
    # A comment making the size a multiple of 3: no base64 padding (works
    # around the message parser dropping the bytes of a padded final group).
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.comment = b"c" * (3 + (-size) % 3)
        for name, data in members.items():
            archive.writestr(name, data)
    raw = bytearray(out.getvalue())
    # Set the "encrypted" flag bit in local and central headers of chosen members.
    for name in encrypted:
        encoded = name.encode()
        for signature, flag_offset, name_offset in ((b"PK\x03\x04", 6, 30), (b"PK\x01\x02", 8, 46)):
            start = 0
            while (pos := raw.find(signature, start)) >= 0:
                if raw[pos + name_offset : pos + name_offset + len(encoded)] == encoded:
                    raw[pos + flag_offset] |= 1
                start = pos + 4
    return bytes(raw)


def disposition_name(filename: str) -> bytes:
    if filename.isascii():
        return f'filename="{filename}"'.encode()
    return ("filename*=utf-8''" + quote(filename)).encode()


def mail_with(filename: str, payload: bytes, ctype: str = "application/octet-stream") -> bytes:
    if not payload.startswith(b"PK"):
        payload += b"\0" * ((-len(payload)) % 3)
    encoded = base64.encodebytes(payload).replace(b"\n", b"\r\n")
    return (
        b"From: a@b.test\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="B"\r\n\r\n'
        b"--B\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
        b"--B\r\nContent-Type: "
        + ctype.encode()
        + b"\r\nContent-Disposition: attachment; "
        + disposition_name(filename)
        + b"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + encoded
        + b"--B--\r\n"
    )


def scan(data: bytes) -> dict[str, float]:
    evidence = Evidence()
    asyncio.run(AttachmentsCheck(BAD_EXTENSIONS, ArchiveLimits()).run(make_tx(data), evidence))
    return names(evidence)


BOMB = zip_of({"big.txt": b"\0" * (40 * 1024 * 1024)})


CASES = [
    ("plain pdf", "report.pdf", b"%PDF-1.4 hello", set()),
    ("exe", "setup.exe", PE, {"ATTACH_BAD_EXT", "ATTACH_EXECUTABLE"}),
    (
        "double ext",
        "invoice.pdf.exe",
        PE,
        {"ATTACH_BAD_EXT", "ATTACH_DOUBLE_EXT", "ATTACH_EXECUTABLE"},
    ),
    ("padded double ext", "invoice.pdf       .scr", b"x", {"ATTACH_BAD_EXT", "ATTACH_DOUBLE_EXT"}),
    ("trailing dot", "run.js.", b"x", {"ATTACH_BAD_EXT"}),
    ("rtlo", "invoice\u202efdp.exe", b"x", {"ATTACH_BAD_EXT", "ATTACH_RTLO"}),
    ("disguised pe", "photo.jpg", PE, {"ATTACH_EXECUTABLE", "ATTACH_DISGUISED"}),
    ("elf", "data.bin", ELF, {"ATTACH_EXECUTABLE", "ATTACH_DISGUISED"}),
    ("script", "readme.txt", b"#!/bin/sh\nrm -rf ~\n", {"ATTACH_EXECUTABLE", "ATTACH_DISGUISED"}),
    (
        "zip with exe name",
        "docs.zip",
        zip_of({"a/invoice.pdf.exe": b"x"}),
        {"ATTACH_ARCHIVE_EXECUTABLE"},
    ),
    ("zip with pe content", "docs.zip", zip_of({"readme.txt": PE}), {"ATTACH_ARCHIVE_EXECUTABLE"}),
    (
        "zip in zip",
        "docs.zip",
        zip_of({"inner.zip": zip_of({"x.lnk": b"x"})}),
        {"ATTACH_ARCHIVE_EXECUTABLE"},
    ),
    ("clean zip", "docs.zip", zip_of({"a.txt": b"hello", "b.pdf": b"%PDF"}), set()),
    (
        "encrypted zip",
        "docs.zip",
        zip_of({"a.txt": b"hello"}, {"a.txt"}),
        {"ATTACH_ARCHIVE_ENCRYPTED"},
    ),
    ("zip bomb ratio", "big.zip", BOMB, {"ATTACH_ARCHIVE_BOMB"}),
    (
        "many entries",
        "many.zip",
        zip_of({f"f{n}.txt": b"" for n in range(1200)}),
        {"ATTACH_ARCHIVE_BOMB"},
    ),
    ("broken zip", "broken.zip", b"PK\x03\x04" + b"\xff" * 300, {"ATTACH_ARCHIVE_BROKEN"}),
    ("macro ext", "sheet.xlsm", zip_of({"[Content_Types].xml": b"<x/>"}), {"ATTACH_MACRO_EXT"}),
    (
        "ooxml vba",
        "report.docx",
        zip_of({"word/document.xml": b"<x/>", "word/vbaProject.bin": OLE_VBA}),
        {"ATTACH_OFFICE_MACRO"},
    ),
    ("ole vba", "old.doc", OLE_VBA, {"ATTACH_OFFICE_MACRO"}),
    ("ole clean", "old.doc", OLE_VBA[:208], set()),
]


@pytest.mark.parametrize(
    ("label", "filename", "payload", "expected"), CASES, ids=[c[0] for c in CASES]
)
def test_cases(label: str, filename: str, payload: bytes, expected: set[str]) -> None:
    assert set(scan(mail_with(filename, payload))) == expected, label


def test_zip_bomb_is_cheap() -> None:
    assert len(BOMB) < 100_000
    started = time.monotonic()
    assert "ATTACH_ARCHIVE_BOMB" in scan(mail_with("big.zip", BOMB))
    assert time.monotonic() - started < 1.0


def test_oversized_archive_is_marked_unchecked() -> None:
    payload = zip_of({f"r{n}.bin": bytes(range(256)) * 64 for n in range(120)})
    big = payload + b"\0" * (1024 * 1024)  # past the parser's kept payload
    assert "ATTACH_ARCHIVE_UNCHECKED" in scan(mail_with("big.zip", big))


def test_deeply_nested_mime_gives_a_symbol() -> None:
    depth = 40
    head = b"From: a@b.test\r\nSubject: deep\r\nMIME-Version: 1.0\r\n"
    body = b""
    for level in range(depth):
        body += f'Content-Type: multipart/mixed; boundary="b{level}"\r\n\r\n--b{level}\r\n'.encode()
    body += b"Content-Type: text/plain\r\n\r\ndeep\r\n"
    for level in reversed(range(depth)):
        body += f"--b{level}--\r\n".encode()
    started = time.monotonic()
    assert "MIME_TOO_DEEP" in scan(head + body)
    assert time.monotonic() - started < 2.0


def test_helpers() -> None:
    assert extensions("Invoice.PDF .EXE. ") == ["pdf", "exe"]
    assert extensions("C:\\temp\\a.b\\run.bat") == ["bat"]
    assert executable_kind(b"MZ" + b"\0" * 58 + struct.pack("<I", 64) + b"NOPE") == ""
    assert executable_kind(b"\xcf\xfa\xed\xfe....") == "macho"
