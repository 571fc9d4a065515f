"""Attachment checks (data stage): what a mail client would let a user run.

Contract: looks at every attachment the message parser kept
(``tx.message.attachments``: file name, declared type, decoded size and the
first ``max_attachment_bytes`` of the payload) and at the parser's defects.
Symbols (default scores):

- ``ATTACH_BAD_EXT`` (3.0): a dangerous extension (.exe, .js, .lnk, .iso...);
- ``ATTACH_DOUBLE_EXT`` (4.0): a document extension hiding an executable one
  (``invoice.pdf.exe``, also with padding spaces);
- ``ATTACH_RTLO`` (4.0): a right-to-left override in the name (``exe.pdf``
  shown reversed);
- ``ATTACH_EXECUTABLE`` (3.0): executable content by magic bytes (PE ``MZ``,
  ELF, Mach-O, Java class, ``#!`` scripts), ``ATTACH_DISGUISED`` (2.0) on top
  when the name does not say so;
- ``ATTACH_ARCHIVE_EXECUTABLE`` (4.0): a zip (or a zip in a zip) holding any
  of the above; ``ATTACH_ARCHIVE_ENCRYPTED`` (2.0): encrypted members, the
  classic way past scanners; ``ATTACH_ARCHIVE_BOMB`` (3.0): entry count,
  compression ratio or total size past the limits; ``ATTACH_ARCHIVE_BROKEN``
  (0.5): not readable although complete; ``ATTACH_ARCHIVE_UNCHECKED`` (0.0):
  larger than the parser keeps, not inspected;
- ``ATTACH_MACRO_EXT`` (1.0): macro-enabled Office extension (.docm...);
  ``ATTACH_OFFICE_MACRO`` (3.0): VBA found in an OLE file or an OOXML
  ``vbaProject.bin``;
- ``MIME_TOO_DEEP`` / ``MIME_TOO_MANY_PARTS`` (1.0): the parser stopped at
  its nesting or part limits (hostile structure);
- ``PARSE_FAILED`` (3.0): the parser failed on part of the message (a
  header or part that does not decode, or the MIME parser itself) and kept
  only what it could read. A message built to break the parser is built to
  slip past content checks: the failure itself scores, so hiding content
  that way never lowers a score. Ham rarely trips it (a broken header alone
  is a ``header_undecodable`` defect and also counts).

Archives are inspected with ``zipfile`` over the bounded bytes only; members
are never extracted: names and sizes come from the central directory and at
most 64 bytes of each member are decompressed to sniff its type, so a zip
bomb costs nothing. CPU only, no I/O; failure mode: the runner's default.
"""

from __future__ import annotations

import io
import logging
import struct
import zipfile
from dataclasses import dataclass
from typing import ClassVar

from mailmoat.checks.base import Check, Services
from mailmoat.checks.spec import CheckSpec, SymbolSpec
from mailmoat.core.symbols import Evidence, Stage
from mailmoat.core.transaction import Transaction

log = logging.getLogger("mailmoat.checks.attachments")


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


BAD_EXTENSIONS = _words(
    "exe com scr pif bat cmd vbs vbe js jse wsf wsh ws hta msi msp mst cpl jar ps1 psm1 psd1 "
    "lnk reg dll sys iso img vhd vhdx application gadget scf chm hlp msc appx appxbundle msix "
    "msixbundle xll url inf sct jnlp one library-ms settingcontent-ms diagcab appref-ms"
)
DOCUMENT_EXTENSIONS = _words(
    "pdf doc docx xls xlsx ppt pptx rtf txt csv odt ods jpg jpeg png gif bmp tif tiff "
    "mp3 mp4 wav avi mov zip rar 7z htm html eml xml"
)
MACRO_EXTENSIONS = _words("docm dotm xlsm xltm xlam xlsb pptm potm ppam ppsm sldm")
ARCHIVE_EXTENSIONS = frozenset({"zip", "jar", "docx", "xlsx", "pptx", "docm", "xlsm", "pptm"})

SPEC = CheckSpec(
    name="attachments",
    stages=(Stage.DATA,),
    summary="Attachments a mail client would let a user run; parser limits and failures.",
    symbols=tuple(
        SymbolSpec(name, score, text, group)
        for name, score, text, group in (
            (
                "ATTACH_BAD_EXT",
                3.0,
                "An attachment has a dangerous extension (.exe, .js...).",
                "attachments",
            ),
            (
                "ATTACH_DOUBLE_EXT",
                4.0,
                "A document extension hides an executable one (invoice.pdf.exe).",
                "attachments",
            ),
            (
                "ATTACH_RTLO",
                4.0,
                "An attachment name uses a right-to-left override.",
                "attachments",
            ),
            (
                "ATTACH_EXECUTABLE",
                3.0,
                "An attachment is executable code (by its bytes).",
                "attachments",
            ),
            (
                "ATTACH_DISGUISED",
                2.0,
                "An executable attachment's name does not say it is one.",
                "attachments",
            ),
            (
                "ATTACH_ARCHIVE_EXECUTABLE",
                4.0,
                "A zip attachment holds an executable or a dangerous name.",
                "attachments",
            ),
            (
                "ATTACH_ARCHIVE_ENCRYPTED",
                2.0,
                "A zip attachment has encrypted members, a classic way past scanners.",
                "attachments",
            ),
            (
                "ATTACH_ARCHIVE_BOMB",
                3.0,
                "A zip attachment exceeds the entry, ratio or size limits (archive bomb).",
                "attachments",
            ),
            (
                "ATTACH_ARCHIVE_BROKEN",
                0.5,
                "A complete zip attachment cannot be read.",
                "attachments",
            ),
            (
                "ATTACH_ARCHIVE_UNCHECKED",
                0.0,
                "An archive attachment is larger than the parser keeps; not inspected.",
                "attachments",
            ),
            (
                "ATTACH_MACRO_EXT",
                1.0,
                "An attachment has a macro-enabled Office extension (.docm...).",
                "attachments",
            ),
            (
                "ATTACH_OFFICE_MACRO",
                3.0,
                "An Office attachment contains VBA macros.",
                "attachments",
            ),
            ("MIME_TOO_DEEP", 1.0, "MIME parts are nested deeper than the parser follows.", "mime"),
            (
                "MIME_TOO_MANY_PARTS",
                1.0,
                "The message has more MIME parts than the parser reads.",
                "mime",
            ),
            (
                "PARSE_FAILED",
                3.0,
                "Part of the message could not be parsed; only what could be read was checked.",
                "mime",
            ),
        )
    ),
)
# Parser defects (``ParsedMessage.defects``) that mean part of the message
# could not be read; the text after the colon names the exception.
PARSE_FAILURES = ("parser_failed:", "part_failed:", "part_lost:", "headers_failed:")
PARSE_FAILURE_FLAGS = frozenset({"header_undecodable"})

_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_VBA_MARKERS = ("_VBA_PROJECT".encode("utf-16-le"), "Macros".encode("utf-16-le"))
_MACHO = (b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xce\xfa\xed\xfe", b"\xcf\xfa\xed\xfe")
_RTLO = ("\u202e", "\u202d", "\u2066", "\u2067", "\u2068")


@dataclass(frozen=True)
class ArchiveLimits:
    max_entries: int = 1000
    max_ratio: int = 200
    max_total: int = 512 * 1024 * 1024


def executable_kind(head: bytes) -> str:
    """ "pe", "elf", "macho", "java", "script" or "" from the first bytes."""
    if head[:2] == b"MZ":
        if len(head) >= 64:
            offset = struct.unpack_from("<I", head, 60)[0]
            if offset + 4 <= len(head) and head[offset : offset + 4] != b"PE\0\0":
                return ""
        return "pe"
    if head[:4] == b"\x7fELF":
        return "elf"
    if head[:4] in _MACHO:
        return "macho"
    if head[:4] == b"\xca\xfe\xba\xbe":
        return "java"
    if head[:3] == b"#!/" or head[:4] == b"#! /":
        return "script"
    return ""


def extensions(filename: str) -> list[str]:
    """Extensions, last one last, as Windows sees them (trailing dots and
    spaces dropped, padding inside the name ignored)."""
    name = filename.strip().rstrip(". ").lower().replace("\\", "/").rsplit("/", 1)[-1]
    parts = [p.strip() for p in name.split(".")[1:]]
    return [p for p in parts if p]


def name_findings(filename: str, bad: frozenset[str] = BAD_EXTENSIONS) -> list[str]:
    found: list[str] = []
    if any(mark in filename for mark in _RTLO):
        found.append("ATTACH_RTLO")
    exts = extensions(filename)
    if exts and exts[-1] in bad:
        found.append("ATTACH_BAD_EXT")
        if len(exts) >= 2 and exts[-2] in DOCUMENT_EXTENSIONS:
            found.append("ATTACH_DOUBLE_EXT")
    if exts and exts[-1] in MACRO_EXTENSIONS:
        found.append("ATTACH_MACRO_EXT")
    return found


def has_vba(payload: bytes) -> bool:
    if payload.startswith(_OLE):
        return any(marker in payload for marker in _VBA_MARKERS)
    return False


def inspect_zip(payload: bytes, limits: ArchiveLimits, depth: int = 0) -> set[str]:
    """Symbols for a zip payload; reads only the directory and member heads."""
    found: set[str] = set()
    try:
        archive = zipfile.ZipFile(io.BytesIO(payload))
        members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        return {"ATTACH_ARCHIVE_BROKEN"}
    except (NotImplementedError, RuntimeError, struct.error, UnicodeError):
        return {"ATTACH_ARCHIVE_BROKEN"}
    if len(members) > limits.max_entries:
        found.add("ATTACH_ARCHIVE_BOMB")
        members = members[: limits.max_entries]
    total = 0
    for info in members:
        total += info.file_size
        ratio = info.file_size / info.compress_size if info.compress_size else 0.0
        if ratio > limits.max_ratio and info.file_size > 1024 * 1024:
            found.add("ATTACH_ARCHIVE_BOMB")
            continue
        if info.flag_bits & 0x1:
            found.add("ATTACH_ARCHIVE_ENCRYPTED")
            continue
        if info.is_dir():
            continue
        name_hits = name_findings(info.filename)
        if {"ATTACH_BAD_EXT", "ATTACH_DOUBLE_EXT", "ATTACH_RTLO"} & set(name_hits):
            found.add("ATTACH_ARCHIVE_EXECUTABLE")
        if info.filename.rsplit("/", 1)[-1].lower() == "vbaproject.bin":
            found.add("ATTACH_OFFICE_MACRO")
        head = _member_head(archive, info, 64)
        if executable_kind(head):
            found.add("ATTACH_ARCHIVE_EXECUTABLE")
        elif head.startswith(_OLE) and info.file_size <= 4 * 1024 * 1024:
            body = _member_head(archive, info, 4 * 1024 * 1024)
            if has_vba(body):
                found.add("ATTACH_OFFICE_MACRO")
        elif head.startswith(b"PK\x03\x04") and depth < 1 and info.file_size <= 4 * 1024 * 1024:
            inner = inspect_zip(_member_head(archive, info, 4 * 1024 * 1024), limits, depth + 1)
            found |= {s for s in inner if s != "ATTACH_ARCHIVE_BROKEN"}
    if total > limits.max_total:
        found.add("ATTACH_ARCHIVE_BOMB")
    return found


def _member_head(archive: zipfile.ZipFile, info: zipfile.ZipInfo, size: int) -> bytes:
    try:
        with archive.open(info) as member:
            return member.read(size)
    except Exception:  # zipfile raises a zoo of types on hostile members
        return b""


class AttachmentsCheck(Check):
    name: ClassVar[str] = "attachments"
    stage: ClassVar[str] = Stage.DATA

    def __init__(self, bad_extensions: frozenset[str], limits: ArchiveLimits) -> None:
        self.bad_extensions = bad_extensions
        self.limits = limits

    async def run(self, tx: Transaction, evidence: Evidence) -> None:
        message = tx.message
        found: dict[str, list[str]] = {}

        def note(symbol: str, filename: str) -> None:
            found.setdefault(symbol, []).append(filename[:60] or "(unnamed)")

        for attachment in message.attachments:
            filename = attachment.filename
            payload = attachment.payload
            for symbol in name_findings(filename, self.bad_extensions):
                note(symbol, filename)
            exts = extensions(filename)
            kind = executable_kind(payload[:4096])
            if kind:
                note("ATTACH_EXECUTABLE", f"{filename} ({kind})")
                if not exts or exts[-1] not in self.bad_extensions:
                    note("ATTACH_DISGUISED", filename)
            if has_vba(payload):
                note("ATTACH_OFFICE_MACRO", filename)
            if payload.startswith(b"PK\x03\x04") or (exts and exts[-1] in ARCHIVE_EXTENSIONS):
                if attachment.size > len(payload):
                    note("ATTACH_ARCHIVE_UNCHECKED", f"{filename} ({attachment.size} bytes)")
                    log.info(
                        "attachments: %s too large to inspect (%d bytes)", filename, attachment.size
                    )
                elif payload.startswith(b"PK"):
                    for symbol in inspect_zip(payload, self.limits):
                        note(symbol, filename)
        defects = set(message.defects)
        if "depth_truncated" in defects:
            note("MIME_TOO_DEEP", "")
        if "parts_truncated" in defects:
            note("MIME_TOO_MANY_PARTS", "")
        for defect in message.defects:
            if defect.startswith(PARSE_FAILURES) or defect in PARSE_FAILURE_FLAGS:
                note("PARSE_FAILED", defect)
        for symbol, names in found.items():
            SPEC.add(evidence, symbol, ",".join(dict.fromkeys(names))[:120])


def build(services: Services) -> list[Check]:
    config = services.config.attachments
    bad = frozenset(e.lower().lstrip(".") for e in config.bad_extensions) or BAD_EXTENSIONS
    limits = ArchiveLimits(
        config.max_archive_entries, config.max_compression_ratio, config.max_archive_total
    )
    return [AttachmentsCheck(bad, limits)]
