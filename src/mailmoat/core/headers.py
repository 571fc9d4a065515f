"""Reading a message's header block: pure functions over bytes.

``header_end`` finds the blank line; ``parse_header_block`` gives the header
fields through the stdlib's tolerant parser (compat32: never raises);
``decoded`` turns an RFC 2047 value into text, keeping what cannot be
decoded as it is; ``addresses`` lists an address field's addresses. Used
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
    """The header fields only, tolerant of any garbage (stdlib compat32)."""
    return BytesHeaderParser(policy=compat32).parsebytes(message[: header_end(message)])


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


@functools.lru_cache(maxsize=4096)
def addresses(value: str) -> tuple[str, ...]:
    """The addresses of one address-list field value (``getaddresses``),
    remembered: the header check and DMARC both read From, and a campaign
    repeats it."""
    return tuple(address for _name, address in getaddresses([value]))
