"""DATA payload handling: transparency, line ends, header edits. Pure bytes.

Contract:
- ``unstuff(payload)`` undoes RFC 5321 dot-stuffing on ``<CR><LF>`` lines.
- ``inspect(payload)`` reports what policy cares about: bare LF / bare CR,
  NUL bytes, 8-bit bytes, a line over the limit (when there is one).
- ``normalize_line_ends`` turns every bare LF and bare CR into CRLF, so what
  we pass on can never hold an end-of-DATA sequence of another reading
  (``<LF>.<LF>``, ``<CR>.<CR>``...); the upstream writer dot-stuffs again.
- ``edit_headers`` prepends header fields and drops chosen ones without
  touching any other byte of the message.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from mailmoat.core.headers import header_end, name_and_value, raw_fields

_BARE_LF = re.compile(rb"(?<!\r)\n")
_BARE_CR = re.compile(rb"\r(?!\n)")
# C0 controls but TAB, and DEL: never inside a field value we write.
_FIELD_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class PayloadFacts:
    bare_newline: bool
    has_nul: bool
    has_8bit: bool
    long_line: bool


def unstuff(payload: bytes) -> bytes:
    if b"\r\n." not in payload and not payload.startswith(b"."):
        return payload
    return (b"\r\n" + payload).replace(b"\r\n.", b"\r\n")[2:]


def inspect(payload: bytes, max_line_length: int) -> PayloadFacts:
    # Split in C and compare lengths: far faster than a regex scan. A line's
    # length here counts its CR, hence the + 1. No limit at 0 (or below).
    long_line = (
        0 < max_line_length < len(payload)
        and max(map(len, payload.split(b"\n"))) > max_line_length + 1
    )
    return PayloadFacts(
        bare_newline=has_bare_line_end(payload),
        has_nul=b"\x00" in payload,
        has_8bit=not payload.isascii(),
        long_line=long_line,
    )


def has_bare_line_end(payload: bytes) -> bool:
    """A LF without CR before it or a CR without LF after it. Counting in C
    beats a look-around regex by far: every CRLF holds one CR and one LF."""
    pairs = payload.count(b"\r\n")
    return payload.count(b"\n") != pairs or payload.count(b"\r") != pairs


def normalize_line_ends(payload: bytes) -> bytes:
    if has_bare_line_end(payload):
        payload = _BARE_LF.sub(b"\r\n", payload)
        payload = _BARE_CR.sub(b"\r\n", payload)
    if payload and not payload.endswith(b"\r\n"):
        payload += b"\r\n"
    return payload


def stuff(payload: bytes) -> bytes:
    """Dot-stuff a CRLF message for the wire (without the final ``.``)."""
    if payload.startswith(b"."):
        payload = b"." + payload
    return payload.replace(b"\r\n.", b"\r\n..")


def fold(name: str, value: str, width: int = 78) -> str:
    """``Name: value`` folded at spaces to ``width``, continuation with a tab.

    Control characters in ``value`` (a bare CR or LF from a client's HELO or
    a DNS name would end the field early or smuggle another) become ``?``,
    as Postfix prints them: the only line ends in a field are our folds."""
    value = _FIELD_CONTROL.sub("?", value)
    if len(name) + 2 + len(value) <= width:
        return f"{name}: {value}"  # fits: nothing to fold
    words = value.split(" ")
    lines: list[str] = []
    current = [f"{name}: {words[0]}"]
    length = len(current[0])
    for word in words[1:]:
        if length + 1 + len(word) > width:
            lines.append(" ".join(current))
            current = ["\t" + word]
            length = 1 + len(word)
        else:
            current.append(word)
            length += 1 + len(word)
    lines.append(" ".join(current))
    return "\r\n".join(lines)


def edit_headers(
    message: bytes,
    prepend: list[tuple[str, str]],
    drop: Callable[[str, str], bool] | None = None,
) -> bytes:
    """Prepend ``prepend`` fields (in order) and remove fields ``drop`` selects.

    ``drop(name, value)`` gets the field name and its unfolded value.
    """
    added = b"".join(
        fold(name, value).encode("utf-8", "surrogateescape") + b"\r\n" for name, value in prepend
    )
    if drop is None:
        return added + message
    kept: list[bytes] = []
    for field in raw_fields(message):
        parsed = name_and_value(field)
        if parsed is None or not drop(*parsed):
            kept.append(field)
    return added + b"".join(kept) + message[header_end(message) :]
