"""The DNS wire format of the common lookups, read and written without dnspython.

Why: on a cache miss, building the query and parsing the answer with
dnspython's objects (names, rdatasets with hashed rdata, a message) cost
more CPU than the rest of the lookup. Most answers a mail gateway gets
have one of a few plain shapes; those are read here, everything else still
goes through dnspython exactly as before.

Contract:
- ``question(name, rdtype)`` is the question section (name, type, class
  IN) that ``dns.message.make_query(dns.name.from_text(name), rdtype)``
  writes, or None when the name or type needs dnspython (non-ASCII, an
  escape, an empty or over-long label, an unknown type).
- ``query(ident, question)`` is the whole query: that id, RD set, one
  question, no EDNS (what ``make_query`` sends).
- ``parse(data, ident, question)`` reads a response to that query and
  returns ``Parsed`` only for a message it knows in full: a response (QR)
  to the standard query with that id, not truncated, rcode NOERROR or
  NXDOMAIN, the question echoed (names compared case-insensitively), answer
  records all of the asked name and type with that type A or TXT, an
  authority section of NS records and at most one SOA, additional records
  of type A or AAAA only, every record of class IN, every name well formed
  (compression pointers pointing backwards, past the header), every record
  data exactly its length, nothing after the last record. For anything else
  it returns None (never raises), and the caller hands the datagram to
  dnspython. What it accepts, dnspython accepts as the response to that
  query too, and reads the same way: records deduplicated in order, the
  answer's TTL the smallest of its records, a TTL over 2^31 - 1 taken as 0
  (tests/dns/test_wire.py compares both over generated messages).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

# Record types by name (what the resolver is asked for) and their codes.
TYPE_CODES = {
    "A": 1,
    "NS": 2,
    "CNAME": 5,
    "SOA": 6,
    "PTR": 12,
    "MX": 15,
    "TXT": 16,
    "AAAA": 28,
}
_A, _NS, _SOA, _TXT, _AAAA = 1, 2, 6, 16, 28
_IN = 1
_QR, _OPCODE, _TC = 0x8000, 0x7800, 0x0200
NOERROR, NXDOMAIN = 0, 3
_HEADER = struct.Struct("!HHHHHH")
_RECORD = struct.Struct("!HHIH")
_UINT32 = struct.Struct("!I")


@dataclass(frozen=True, slots=True)
class Parsed:
    """A response of a known shape: its rcode, the answer's record data
    (deduplicated, in order) and smallest TTL, and the authority's SOA as
    (TTL, MINIMUM) when there is one."""

    rcode: int
    rdtype: int
    records: tuple[bytes, ...] = ()
    ttl: int = 0
    soa: tuple[int, int] | None = None

    def texts(self) -> tuple[str, ...]:
        """The records in presentation form: dotted quads (A), the strings
        of each record joined (TXT, undecodable bytes replaced)."""
        if self.rdtype == _A:
            return tuple(f"{r[0]}.{r[1]}.{r[2]}.{r[3]}" for r in self.records)
        return tuple(b"".join(_strings(rdata)).decode("utf-8", "replace") for rdata in self.records)


def question(name: str, rdtype: str) -> bytes | None:
    code = TYPE_CODES.get(rdtype)
    if code is None or not name or name == "@" or not name.isascii() or "\\" in name:
        return None
    labels = name.encode("ascii").split(b".")
    if labels[-1] == b"":
        labels.pop()  # a final dot: the name is absolute anyway
    wire = bytearray()
    for label in labels:
        if not 0 < len(label) < 64:
            return None
        wire.append(len(label))
        wire += label
    wire.append(0)
    if len(wire) > 255:
        return None
    return bytes(wire) + struct.pack("!HH", code, _IN)


def query(ident: int, question: bytes) -> bytes:
    return _HEADER.pack(ident, 0x0100, 1, 0, 0, 0) + question


def parse(data: bytes, ident: int, question: bytes) -> Parsed | None:
    try:
        return _parse(data, ident, question)
    except (IndexError, struct.error):
        return None


def _parse(data: bytes, ident: int, question: bytes) -> Parsed | None:
    size = len(data)
    if size < 12:
        return None
    got_id, flags, questions, answers, authority, additional = _HEADER.unpack_from(data)
    rcode = flags & 0x000F
    if got_id != ident or not flags & _QR or flags & (_OPCODE | _TC) or questions != 1:
        return None
    if rcode not in (NOERROR, NXDOMAIN) or (rcode == NXDOMAIN and answers):
        return None
    name_size = len(question) - 4
    qname = question[:name_size].lower()
    at = 12 + len(question)
    echoed = data[12:at]
    if echoed[:name_size].lower() != qname or echoed[name_size:] != question[name_size:]:
        return None
    qtype = int.from_bytes(question[name_size : name_size + 2], "big")
    if answers and qtype not in (_A, _TXT):
        return None
    records: list[bytes] = []
    ttl = 0
    soa: tuple[int, int] | None = None
    for index in range(answers + authority + additional):
        at, owner = _name(data, at, size)
        if owner is None or at + 10 > size:
            return None
        rtype, rclass, rttl, length = _RECORD.unpack_from(data, at)
        if rttl > 0x7FFFFFFF:
            rttl = 0  # RFC 2181 8, as dnspython reads it
        at += 10
        end = at + length
        if end > size or rclass != _IN:
            return None
        if index < answers:
            if rtype != qtype or owner != qname or not _fits(rtype, data, at, end):
                return None
            rdata = data[at:end]
            ttl = rttl if not records or rttl < ttl else ttl
            if rdata not in records:
                records.append(rdata)
        elif index < answers + authority:
            if rtype == _SOA and soa is None:
                minimum = _soa_minimum(data, at, end)
                if minimum is None:
                    return None
                soa = (rttl, minimum)
            elif rtype != _NS or _name(data, at, end)[0] != end:
                return None
        elif not _fits(rtype, data, at, end) or rtype not in (_A, _AAAA):
            return None
        at = end
    if at != size:
        return None
    return Parsed(rcode, qtype, tuple(records), ttl, soa)


def _fits(rtype: int, data: bytes, start: int, end: int) -> bool:
    """Whether the record data is well formed for its type (A, AAAA, TXT)."""
    if rtype == _A:
        return end - start == 4
    if rtype == _AAAA:
        return end - start == 16
    if rtype == _TXT:
        at = start
        while at < end:
            at += 1 + data[at]
        return at == end and end > start
    return False


def _strings(rdata: bytes) -> list[bytes]:
    strings = []
    at = 0
    while at < len(rdata):
        count = rdata[at]
        strings.append(rdata[at + 1 : at + 1 + count])
        at += 1 + count
    return strings


def _soa_minimum(data: bytes, start: int, end: int) -> int | None:
    at, mname = _name(data, start, end)
    if mname is None:
        return None
    at, rname = _name(data, at, end)
    if rname is None or at + 20 != end:
        return None
    minimum: int = _UINT32.unpack_from(data, at + 16)[0]
    return minimum


def _name(data: bytes, at: int, limit: int) -> tuple[int, bytes | None]:
    """(offset after the name, its wire form in lower case) or (at, None)
    for a name that is not well formed within ``limit``."""
    start = at
    lowest = at  # a pointer must point before every place read so far
    after = -1
    labels: list[bytes] = []
    size = 1
    while True:
        if at >= limit:
            return start, None
        count = data[at]
        if count == 0:
            at += 1
            break
        if count < 64:
            if at + 1 + count > limit:
                return start, None
            labels.append(data[at : at + 1 + count])
            size += 1 + count
            at += 1 + count
        elif count >= 192 and at + 1 < limit:
            target = (count & 0x3F) << 8 | data[at + 1]
            if after < 0:
                after = at + 2
            if target >= lowest or target < 12:
                return start, None
            lowest = at = target
        else:
            return start, None
    if size > 255:
        return start, None
    return (after if after >= 0 else at), b"".join(labels).lower() + b"\0"
