"""The Sendmail/Postfix milter protocol, version 6: packets in and out. Pure bytes.

Contract: ``read_packet`` reads one packet (4-byte big-endian length counting
the command byte, the command byte, the payload) from an asyncio stream and
returns ``Packet``; oversized or truncated packets raise ``ProtocolError``.
``parse_*`` decode the MTA's commands; the ``reply_*`` helpers and
``encode`` build the filter's answers. Nothing here knows about the
pipeline (``mailmoat.milter.server`` does).

Written here rather than taken from a library: the only maintained pure
Python implementation (``purepythonmilter``) brings its own application
framework (attrs-based command objects, its own server loop, click CLI)
where we need a 200-line codec under our own asyncio server, our logging
and our timeouts; the protocol is small and frozen (libmilter's mfdef.h,
Postfix's MILTER_README), and the tests in ``tests/milter`` pin it byte for
byte and against a real Postfix.
"""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass

VERSION = 6
MAX_PACKET = 1 << 20  # Postfix body chunks are at most 64 KiB

# Commands from the MTA (SMFIC_*).
ABORT = b"A"
BODY = b"B"
CONNECT = b"C"
MACRO = b"D"
BODYEOB = b"E"
HELO = b"H"
QUIT_NC = b"K"
HEADER = b"L"
MAIL = b"M"
EOH = b"N"
OPTNEG = b"O"
QUIT = b"Q"
RCPT = b"R"
DATA = b"T"
UNKNOWN = b"U"

# Replies from the filter (SMFIR_*).
ADDRCPT = b"+"
DELRCPT = b"-"
ACCEPT = b"a"
REPLBODY = b"b"
CONTINUE = b"c"
DISCARD = b"d"
CHGFROM = b"e"
ADDHEADER = b"h"
INSHEADER = b"i"
CHGHEADER = b"m"
PROGRESS = b"p"
QUARANTINE = b"q"
REJECT = b"r"
SKIP = b"s"
TEMPFAIL = b"t"
REPLYCODE = b"y"

# Actions the filter may take (SMFIF_*), negotiated in OPTNEG.
SMFIF_ADDHDRS = 0x01
SMFIF_CHGBODY = 0x02
SMFIF_ADDRCPT = 0x04
SMFIF_DELRCPT = 0x08
SMFIF_CHGHDRS = 0x10
SMFIF_QUARANTINE = 0x20

# Protocol steps (SMFIP_*): what the MTA may leave out.
SMFIP_NOCONNECT = 0x01
SMFIP_NOHELO = 0x02
SMFIP_NOMAIL = 0x04
SMFIP_NORCPT = 0x08
SMFIP_NOBODY = 0x10
SMFIP_NOHDRS = 0x20
SMFIP_NOEOH = 0x40
SMFIP_NR_HDR = 0x80
SMFIP_NOUNKNOWN = 0x100
SMFIP_NODATA = 0x200
SMFIP_SKIP = 0x400
SMFIP_RCPT_REJ = 0x800
SMFIP_NR_EOH = 0x40000
SMFIP_HDR_LEADSPC = 0x100000

# What we ask for: add/change headers and quarantine; no replies to single
# headers or EOH (fewer round trips); header values with their leading
# space (so the message we score is byte-exact); no UNKNOWN commands.
WANTED_ACTIONS = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_QUARANTINE
WANTED_PROTOCOL = SMFIP_NR_HDR | SMFIP_NR_EOH | SMFIP_HDR_LEADSPC | SMFIP_NOUNKNOWN

# Address families in CONNECT.
FAMILY_UNKNOWN = b"U"
FAMILY_UNIX = b"L"
FAMILY_INET = b"4"
FAMILY_INET6 = b"6"


class ProtocolError(ValueError):
    """The MTA sent something that is not milter protocol."""


@dataclass(frozen=True, slots=True)
class Packet:
    command: bytes
    data: bytes


@dataclass(frozen=True, slots=True)
class Connect:
    hostname: str
    family: bytes
    port: int
    address: str


@dataclass(frozen=True, slots=True)
class Negotiation:
    version: int
    actions: int
    protocol: int


async def read_packet(reader: asyncio.StreamReader, max_size: int = MAX_PACKET) -> Packet | None:
    """One packet; None on a clean EOF between packets."""
    try:
        head = await reader.readexactly(4)
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise ProtocolError("truncated packet length") from exc
        return None
    (length,) = struct.unpack("!I", head)
    if length < 1 or length > max_size:
        raise ProtocolError(f"bad packet length {length}")
    try:
        body = await reader.readexactly(length)
    except asyncio.IncompleteReadError as exc:
        raise ProtocolError("truncated packet") from exc
    return Packet(body[:1], body[1:])


def encode(command: bytes, data: bytes = b"") -> bytes:
    return struct.pack("!I", len(data) + 1) + command + data


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def strings(data: bytes) -> list[str]:
    """NUL-terminated strings (a missing final NUL is tolerated)."""
    if not data:
        return []
    parts = data.split(b"\x00")
    if parts[-1] == b"":
        parts.pop()
    return [_text(p) for p in parts]


def parse_optneg(data: bytes) -> Negotiation:
    if len(data) < 12:
        raise ProtocolError("short OPTNEG")
    version, actions, protocol = struct.unpack("!III", data[:12])
    return Negotiation(version, actions, protocol)


def parse_connect(data: bytes) -> Connect:
    hostname, sep, rest = data.partition(b"\x00")
    if not sep or not rest:
        raise ProtocolError("short CONNECT")
    family = rest[:1]
    if family in (FAMILY_INET, FAMILY_INET6):
        if len(rest) < 3:
            raise ProtocolError("short CONNECT address")
        (port,) = struct.unpack("!H", rest[1:3])
        address = _text(rest[3:].split(b"\x00", 1)[0])
        if family == FAMILY_INET6 and address.lower().startswith("ipv6:"):
            address = address[5:]
        return Connect(_text(hostname), family, port, address)
    if family == FAMILY_UNIX:
        path = rest[3:].split(b"\x00", 1)[0] if len(rest) >= 3 else b""
        return Connect(_text(hostname), family, 0, _text(path))
    return Connect(_text(hostname), family, 0, "")


def parse_macros(data: bytes) -> tuple[bytes, dict[str, str]]:
    """(command the macros belong to, {name: value}); names lose their braces."""
    if not data:
        raise ProtocolError("empty MACRO")
    items = strings(data[1:])
    names = [n.strip("{}") for n in items[0::2]]
    return data[:1], dict(zip(names, items[1::2], strict=False))


def parse_header(data: bytes) -> tuple[str, str]:
    items = data.split(b"\x00")
    if len(items) < 2:
        raise ProtocolError("bad HEADER")
    return _text(items[0]), _text(items[1])


def parse_address(data: bytes) -> tuple[str, list[str]]:
    """MAIL/RCPT: the path without angle brackets, and the ESMTP parameters."""
    items = strings(data)
    if not items:
        raise ProtocolError("empty address")
    path = items[0].strip()
    if path.startswith("<") and path.endswith(">"):
        path = path[1:-1]
    return path, items[1:]


# -- replies -------------------------------------------------------------------


def reply_optneg(offered: Negotiation) -> bytes:
    """Our answer to OPTNEG: version 6, what we need of what the MTA offers."""
    if offered.version < 2:
        raise ProtocolError(f"milter protocol version {offered.version} too old")
    actions = offered.actions & WANTED_ACTIONS
    protocol = offered.protocol & WANTED_PROTOCOL
    return encode(OPTNEG, struct.pack("!III", min(offered.version, VERSION), actions, protocol))


def _z(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape").replace(b"\x00", b"") + b"\x00"


def reply_code(line: str) -> bytes:
    """SMFIR_REPLYCODE: ``"550 5.7.1 text"`` (one line; % is doubled for Sendmail)."""
    clean = " ".join(line.replace("%", "%%").split())
    if len(clean) < 3 or not clean[:3].isdigit() or clean[0] not in "45":
        raise ValueError(f"not a 4xx/5xx reply: {line!r}")
    return encode(REPLYCODE, _z(clean))


def reply_addheader(name: str, value: str) -> bytes:
    return encode(ADDHEADER, _z(name) + _z(value))


def reply_insheader(index: int, name: str, value: str) -> bytes:
    return encode(INSHEADER, struct.pack("!I", index) + _z(name) + _z(value))


def reply_chgheader(index: int, name: str, value: str = "") -> bytes:
    """Change the ``index``-th (1-based) field called ``name``; "" deletes it."""
    return encode(CHGHEADER, struct.pack("!I", index) + _z(name) + _z(value))


def reply_quarantine(reason: str) -> bytes:
    return encode(QUARANTINE, _z(reason))


def reply(command: bytes) -> bytes:
    """A reply without payload: ACCEPT, CONTINUE, DISCARD, REJECT, TEMPFAIL."""
    return encode(command)
