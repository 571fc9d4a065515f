"""Reading a message's header block: pure functions over bytes.

``header_end`` finds the blank line; ``parse_header_block`` gives the header
fields through the stdlib's tolerant parser (compat32: never raises);
``decoded`` turns an RFC 2047 value into text, keeping what cannot be
decoded as it is. Used by the fronts (records), checks and delivery.
"""

from __future__ import annotations

from email.header import decode_header, make_header
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32


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
