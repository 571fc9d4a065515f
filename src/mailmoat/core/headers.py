"""Reading a message's header block: pure functions over bytes.

``header_end`` finds the blank line; ``parse_header_block`` gives the header
fields through the stdlib's tolerant parser (compat32: never raises);
``decoded`` turns an RFC 2047 value into text, keeping what cannot be
decoded as it is; ``addresses`` lists an address field's addresses;
``header_fields`` gives the raw fields as (name, unfolded value). Used
by the fronts (records), checks and delivery.
"""

from __future__ import annotations

import functools
import re
from email.header import decode_header, make_header
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses


def header_end(message: bytes) -> int:
    """Offset of the blank line ending the header block (len if none)."""
    if message.startswith(b"\r\n"):
        return 0
    index = message.find(b"\r\n\r\n")
    return len(message) if index < 0 else index + 2


def parse_header_block(message: bytes) -> Message:
    """The header fields only, tolerant of any garbage (stdlib compat32).

    A block of plain fields (line ends all CRLF or all LF, every line a
    field with a name or a continuation, a ``From `` envelope line first at
    most) is split here; anything else goes through the stdlib's parser
    (2-3 times slower). Both give the same
    ``Message``: fields as compat32's ``header_source_parse`` makes them
    (folds kept inside the value), an empty payload, no defects.
    """
    block = message[: header_end(message)]
    plain = plain_header_block(block)
    return plain if plain is not None else BytesHeaderParser(policy=compat32).parsebytes(block)


# What the stdlib's feed parser takes for a field name: printable ASCII
# but the colon (``email.feedparser.headerRE``), at least one character.
_FIELD_NAME = re.compile(r"[\041-\071\073-\176]+")
# A line end not followed by a continuation line's blank: where a field ends.
_FIELD_STARTS_CRLF = re.compile(r"\r\n(?![ \t])")
_FIELD_STARTS_LF = re.compile(r"\n(?![ \t])")


def plain_header_block(block: bytes) -> Message | None:
    """The fields of ``block`` (a header block without its blank line) as
    ``parse_header_block`` splits a plain block by itself: the stdlib's
    ``Message`` for it (an mbox ``From `` line first is the envelope line),
    or None when the block is not plain (then only the stdlib's parser can
    tell)."""
    if b"\r" not in block:
        eol = "\n"  # a file's line ends
    elif block.count(b"\r") == block.count(b"\n") == block.count(b"\r\n"):
        eol = "\r\n"
    else:
        return None
    if not block.endswith(eol.encode()):
        return None
    # As the stdlib reads it: ASCII, other bytes as surrogates; without the
    # last line end, split into fields (a line and its continuation lines).
    text = block.decode("ascii", "surrogateescape")[: -len(eol)]
    unixfrom = ""
    if text.startswith("From "):  # an mbox envelope line, kept apart
        unixfrom, more, text = text.partition(eol)
        if not more:
            return _message(unixfrom, [])
    if text[:1] in (" ", "\t"):
        return None  # a continuation first: the stdlib records a defect
    fields: list[tuple[str, str]] = []
    for field in (_FIELD_STARTS_CRLF if eol == "\r\n" else _FIELD_STARTS_LF).split(text):
        colon = field.find(":")
        # A name with a line end, space or colon in it is no field name:
        # so neither a line without a colon nor a misplaced ``From `` line.
        if colon <= 0 or not _FIELD_NAME.fullmatch(field, 0, colon):
            return None
        # The value's first line loses its leading blanks (never its line
        # end); folds stay inside it.
        fields.append((field[:colon], field[colon + 1 :].lstrip(" \t")))
    return _message(unixfrom, fields)


def _message(unixfrom: str, fields: list[tuple[str, str]]) -> Message:
    """A header-only ``Message`` as the stdlib's parser makes it."""
    parsed = Message(policy=compat32)
    if unixfrom:
        parsed.set_unixfrom(unixfrom)
    # What ``set_raw`` would append field by field: compat32 stores a field
    # as its (name, value) pair (``Compat32.header_store_parse``).
    vars(parsed)["_headers"] = fields
    parsed.set_payload("")
    return parsed


def decoded(value: object) -> str:
    """An RFC 2047 header value as text; undecodable parts kept as they are."""
    if value is None:
        return ""
    text = str(value)
    try:
        return str(make_header(decode_header(text)))
    except (ValueError, LookupError, UnicodeError):
        return text


_CONTINUATION = re.compile(rb"\r?\n[ \t]+")


def raw_fields(message: bytes) -> list[bytes]:
    """The header block's fields, each with its folded lines and line end."""
    fields: list[bytes] = []
    for line in message[: header_end(message)].splitlines(keepends=True):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += line
        else:
            fields.append(line)
    return fields


def name_and_value(field: bytes) -> tuple[str, str] | None:
    """``(name, unfolded value)`` of one raw field; None when it has no colon."""
    name, colon, value = field.partition(b":")
    if not colon:
        return None
    return (
        name.decode("ascii", "replace").strip(),
        _CONTINUATION.sub(b" ", value).decode("utf-8", "replace").strip(),
    )


def header_fields(message: bytes) -> tuple[tuple[str, str], ...]:
    """Top-level header fields as (name, unfolded value), exactly as
    ``wire.content.edit_headers`` presents them to its ``drop`` callback."""
    parsed = (name_and_value(field) for field in raw_fields(message))
    return tuple(field for field in parsed if field is not None)


@functools.lru_cache(maxsize=4096)
def addresses(value: str) -> tuple[str, ...]:
    """The addresses of one address-list field value (``getaddresses``),
    remembered: the header check and DMARC both read From, and a campaign
    repeats it."""
    return tuple(address for _name, address in getaddresses([value]))
