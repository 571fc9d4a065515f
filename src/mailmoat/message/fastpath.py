"""The MIME tree without the stdlib's line-by-line parser, where that is exact.

Contract: ``split_message(data, separator, given)`` returns the root of the
tree ``BytesParser(policy=compat32).parsebytes(data)`` would build, as far
as ``parse._Walker`` reads it (header fields and root defects, content
types, payloads), or None when only the full parse can tell; it never
raises. ``separator`` is the first blank line of ``data``
(``header_separator``); ``given`` the caller's header block parse, used
when it fits.

Why: the stdlib's feed parser reads every body line through Python code (a
base64 attachment is thousands of lines) and compiles a regex per MIME
boundary; both are most of its cost. Here lines are never split: bodies are
sliced from ``data`` and boundary lines found with ``bytes.find``. Leaf
payloads are those bytes (the stdlib's text is the same bytes decoded as
ASCII with surrogateescape, which the walker encodes back).

The cases handled are those where the stdlib's result is plain to see:

* single-part root (not ``multipart/*`` or ``message/*``): its payload is
  the rest of ``data``;
* ``multipart/*`` (not ``digest``, whose parts default to
  ``message/rfc822``) with one line end throughout (all CRLF or all LF), a
  boundary, a first delimiter line that is no close delimiter and no two
  delimiter lines in a row (a transfer encoding other than 7bit/8bit/binary
  and a missing close delimiter are noted as the stdlib notes them: a
  defect each, the last part running to the end); every part's header
  block plain (``plain_header_block``) and ended by a blank line (or no
  header block at all), no ``message/*`` part, nesting at most
  ``_MAX_DEPTH`` deep. A part's body ends before the next
  delimiter line, less the line end before it (RFC 2046 5.1.1: it belongs to
  the delimiter), as the stdlib strips it. Preambles and epilogues, which the
  walker never reads, are skipped.

Any other message (bare CRs, a missing delimiter, a header line without a
colon, nested messages...) returns None and takes the full parse.
"""

from __future__ import annotations

import itertools
from email import policy
from email.errors import (
    CloseBoundaryNotFoundDefect,
    InvalidMultipartContentTransferEncodingDefect,
    MissingHeaderBodySeparatorDefect,
)
from email.message import Message
from email.parser import BytesParser
from typing import NamedTuple

from mailmoat.core.headers import header_end, plain_header_block

_MAX_DEPTH = 20
_PLAIN_ENCODINGS = ("7bit", "8bit", "binary")


class Separator(NamedTuple):
    """Where the first blank line's match of ``\\r?\\n\\r?\\n`` starts and
    ends: the header block's last line end, then the blank line."""

    start: int
    end: int


def header_separator(data: bytes) -> Separator | None:
    """The leftmost match of ``rb"\\r?\\n\\r?\\n"`` in ``data``, or None;
    found with ``bytes.find`` (the regex tries every line end of the header
    block and costs several times more). Its first LF is the first LF
    followed by LF or CRLF; a CR before that LF belongs to the match."""
    crlf = data.find(b"\n\r\n")
    lf = data.find(b"\n\n", 0, crlf + 1) if crlf >= 0 else data.find(b"\n\n")
    if lf >= 0:
        first, end = lf, lf + 2
    elif crlf >= 0:
        first, end = crlf, crlf + 3
    else:
        return None
    start = first - 1 if first > 0 and data[first - 1] == 13 else first
    return Separator(start, end)


class Given(NamedTuple):
    """The caller's header block parse: ``head`` was parsed from ``data``,
    which holds the parsed text after its first ``skip`` bytes (an mbox
    ``From `` line)."""

    data: bytes
    skip: int
    head: Message


def split_message(
    data: bytes, separator: Separator | None, given: Given | None
) -> tuple[Message, bytes | None] | None:
    """(root, root payload) for a single-part root, (root, None) for a
    multipart root whose parts hold their payloads, None for the full parse."""
    if separator is None:
        return None
    try:
        head = _root_head(data, separator, given)
        if head is None:
            return None
        # The test the full parser makes before it reads the body.
        maintype = head.get_content_maintype()
        if maintype == "message":
            return None
        if maintype != "multipart":
            return head, data[separator.end :]
        return _multipart_root(data, separator.end, head)
    except Exception:  # let the full parse meet (and report) the same failure
        return None


def _root_head(data: bytes, separator: Separator, given: Given | None) -> Message | None:
    """The root's header fields when a header-only parse takes every line
    before ``separator`` as a header line (as the full parse then does):
    the caller's parse when it fits (``head_fits``), else
    ``plain_header_block``'s split of a plain block, else the stdlib's."""
    body_offset = separator.end
    if given is not None and head_fits(data, body_offset, given):
        return given.head
    # The block with its last line end, without the blank line.
    line_end = separator.start + (2 if data[separator.start] == 13 else 1)
    head = plain_header_block(data[:line_end])
    if head is None:
        head = BytesParser(policy=policy.compat32).parsebytes(data[:body_offset], headersonly=True)
        if not clean(head):
            return None
    return head


def head_fits(data: bytes, body_offset: int, given: Given) -> bool:
    """Whether ``given.head``, parsed by ``parse_header_block`` from the
    header block of ``given.data`` (``data`` behind ``given.skip`` bytes),
    saw the lines the full parse of ``data`` reads as the header block.

    ``header_end`` finds only the first CRLF CRLF: it must be the separator
    ``header_separator`` found (none earlier, LF-only or not), so the block ends
    where ``data[:body_offset]`` ends but for the blank line. Without bare
    CRs the block's lines split as in ``data``, its last line is no blank
    line (that would be an earlier separator), and a parse that left no
    payload and no separator defect took them all as headers, as the full
    parse does before it consumes the blank line. With skipped bytes (an
    mbox ``From `` line, which ``parse_header_block`` took as the envelope
    line), ``data`` must not start with ``From `` (the full parse would take
    that line as the envelope; the head saw it as a misplaced one).
    """
    block_end = given.skip + body_offset - 2
    return (
        body_offset > 2
        and header_end(given.data) == block_end
        and given.data.count(b"\r", 0, block_end) == given.data.count(b"\r\n", 0, block_end)
        and not (given.skip and data.startswith(b"From "))
        and clean(given.head)
    )


def raw_payload(part: Message) -> object:
    """The part's payload as parsed: its children, or its text (ASCII with
    the other bytes surrogate-escaped). Not ``get_payload()``: compat32
    decodes 8-bit text there by the charset parameter, replacing what does
    not fit (no charset: every 8-bit byte becomes U+FFFD), and ``parse``
    could not recover the bytes to decode them with its fallbacks."""
    return part.__dict__.get("_payload")


def clean(head: Message) -> bool:
    """A header-only parse that took every line as a header line."""
    return raw_payload(head) == "" and not any(
        isinstance(defect, MissingHeaderBodySeparatorDefect) for defect in head.defects
    )


def _multipart_root(data: bytes, body_offset: int, head: Message) -> tuple[Message, None] | None:
    if head.defects:
        return None
    if b"\r" not in data:
        eol = b"\n"
    elif data.count(b"\r") == data.count(b"\n") == data.count(b"\r\n"):
        eol = b"\r\n"
    else:
        return None
    root = Message(policy=policy.compat32)  # the caller's head stays as it is
    vars(root)["_headers"] = list(head.raw_items())
    if not _split(data, body_offset, len(data), root, eol, 0):
        return None
    return root, None


def _split(data: bytes, start: int, end: int, part: Message, eol: bytes, depth: int) -> bool:
    """Set the parts of the multipart ``part``, whose body is
    ``data[start:end]``, as its payload; False when only the stdlib can."""
    boundary = part.get_boundary()
    if boundary is None or depth >= _MAX_DEPTH or part.get_content_subtype() == "digest":
        return False
    encoding = str(part.get("content-transfer-encoding", "8bit")).lower()
    if encoding not in _PLAIN_ENCODINGS:  # noted, then split as any other
        part.defects.append(InvalidMultipartContentTransferEncodingDefect())
    delimiter = b"--" + boundary.encode("ascii", "surrogateescape")
    lines = _delimiter_lines(data, start, end, delimiter, eol)
    if lines is None:
        return False
    closed = lines[-1][2]
    if not closed:  # the last part runs to the end
        lines.append((end, end, True))
    children: list[Message | str] = []
    for (_, body_start, _), (next_start, _, _) in itertools.pairwise(lines):
        child = _part(data, body_start, next_start, eol, depth)
        if child is None:
            return False
        children.append(child)
    part.set_payload(children)
    if not closed:
        part.defects.append(CloseBoundaryNotFoundDefect())
    return True


def _delimiter_lines(
    data: bytes, start: int, end: int, delimiter: bytes, eol: bytes
) -> list[tuple[int, int, bool]] | None:
    """(line start, next line start, is close) of each delimiter line of
    ``data[start:end]`` up to the close delimiter if any; None unless the
    first is an opening one and none directly follows another. A delimiter
    line is the delimiter, ``--`` for the close one, blanks (the stdlib's
    boundary regex, matched at each line start)."""
    lines: list[tuple[int, int, bool]] = []
    needle = eol + delimiter
    if data.startswith(delimiter, start, end):
        at = start
    else:
        found = data.find(needle, start, end)
        at = found + len(eol) if found >= 0 else -1
    while at >= 0:
        line_end = data.find(eol, at, end)
        content_end = end if line_end < 0 else line_end
        rest = data[at + len(delimiter) : content_end]
        close = rest.startswith(b"--")
        if not rest[2 if close else 0 :].strip(b" \t"):
            if (lines and lines[-1][1] == at) or (close and not lines):
                return None  # a delimiter line after another is skipped
            lines.append((at, end if line_end < 0 else line_end + len(eol), close))
            if close:
                break
        if line_end < 0:
            break
        found = data.find(needle, line_end, end)
        at = found + len(eol) if found >= 0 else -1
    return lines or None


def _part(data: bytes, start: int, end: int, eol: bytes, depth: int) -> Message | None:
    """One part, ``data[start:end]`` (its line end before the next
    delimiter included), as the stdlib builds it; None when unsure."""
    if data.startswith(eol, start, end):  # no header block
        part = Message(policy=policy.compat32)
        body = start + len(eol)
    else:
        blank = data.find(eol + eol, start, end)
        if blank < 0:
            return None
        head = plain_header_block(data[start : blank + len(eol)])
        if head is None:
            return None
        part, body = head, blank + 2 * len(eol)
    maintype = part.get_content_maintype()
    if maintype == "message":
        return None
    if maintype == "multipart":
        return part if _split(data, body, end, part, eol, depth + 1) else None
    # The line end before the delimiter belongs to the delimiter.
    payload_end = end - len(eol) if data.endswith(eol, body, end) else end
    part.set_payload(data[body:payload_end])
    return part
