"""``parse_message``: raw bytes to a bounded ``ParsedMessage``, never raising.

Contract: accepts any bytes (an RFC 5322 message, optionally behind an mbox
``From `` line, CRLF or LF line ends) and returns a ``ParsedMessage``. Work
is bounded by ``ParseLimits``; every cut and every failure is recorded in
``defects`` instead of raised. A failure costs only what it touches: a
header that does not decode keeps its raw text (``header_undecodable``), a
part that does not decode keeps its name and bytes (``part_failed:*``), and
when the stdlib parser itself fails (``parser_failed:*``, e.g. the
``RecursionError`` of a thousand nested multiparts) the tree is split again
without recursion (``fallback.split_tree``); only if that fails too is the
body read as one text, still with the top-level headers and its URLs.

The stdlib ``email`` package with ``policy.compat32`` does the MIME
splitting: it is the fastest and most tolerant parser available. Written by
hand here is only what it lacks: an iterative, depth- and count-limited walk
(``Message.walk`` recurses without bounds), bounded payload decoding and the
charset fallbacks (see ``decode``), HTML reduction (``html``) and URL
extraction (``urls``).

Fast path: when the top-level part is single-part (not ``multipart/*`` or
``message/*``) and a header-only parse ends exactly at the blank line found
by ``_HEADER_END``, the body bytes are sliced from the input and handed to
the walk as the root's payload, because the full parser would only rebuild
that same body line by line (the bulk of its cost for a plain message). The
header block is the caller's parse (``Transaction.headers``) when it
provably covers the same lines (also behind an mbox ``From `` line), else
``core.headers``' own split of a plain block, else the stdlib's. Anything
else takes the full parse, so the result is the same either way.
"""

from __future__ import annotations

import re
from email import policy
from email.errors import MissingHeaderBodySeparatorDefect
from email.message import Message
from email.parser import BytesParser
from typing import NamedTuple

from mailmoat.core.headers import header_end, plain_header_block
from mailmoat.message.decode import (
    decode_header_value,
    decode_text,
    decode_transfer,
    surrogate_bytes,
)
from mailmoat.message.fallback import split_tree
from mailmoat.message.html import html_to_text
from mailmoat.message.model import Attachment, ParsedMessage, ParseLimits
from mailmoat.message.urls import UrlCollector

DEFAULT_LIMITS = ParseLimits()
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_NAMED_FIELDS = ("Content-Disposition", "Content-Type")
# filename=, name=, and their RFC 2231 forms (filename*=charset''value).
_RAW_FILENAME = re.compile(
    r"""\b(?:file)?name\*?(?:0\*?)?\s*=\s*(?:[^'";]*'[^'";]*')?("[^"]*"|[^;\s]+)""", re.I
)
_PERCENT = re.compile(rb"%([0-9A-Fa-f]{2})")
_CHARSET = re.compile(r"""charset\s*=\s*["']?([^"';\s]+)""", re.I)


def parse_message(
    raw: bytes, limits: ParseLimits | None = None, *, head: Message | None = None
) -> ParsedMessage:
    """Parse ``raw`` once for every content check; never raises.

    ``head`` is optional: the header block of ``raw`` as
    ``core.headers.parse_header_block(raw)`` parsed it. It spares a second
    header parse when it provably fits this data, is ignored otherwise, and
    is only read, never changed.
    """
    return _parse(raw, limits, head, fast=True)


def _parse(
    raw: bytes, limits: ParseLimits | None, head: Message | None, *, fast: bool
) -> ParsedMessage:
    """``parse_message``; ``fast=False`` forces the full stdlib parse (tests)."""
    limits = limits or DEFAULT_LIMITS
    defects: list[str] = []
    try:
        data = bytes(raw)
    except (TypeError, ValueError):
        data = b""
        defects.append("input_not_bytes")
    # Bytes of ``raw`` before ``data``: None once data is no longer a tail
    # of raw as the caller's head parser saw it.
    head_skip: int | None = 0
    given_data = data
    if data.startswith(b"From "):
        line_end = data.find(b"\n")
        data = data[line_end + 1 :] if line_end >= 0 else b""
        head_skip = line_end + 1 if line_end >= 0 else None
    if len(data) > limits.max_input_bytes:
        data = data[: limits.max_input_bytes]
        defects.append("input_truncated")
        head_skip = None
    separator = _HEADER_END.search(data)
    body_offset = separator.end() if separator else len(data)
    try:
        given = (
            _Given(given_data, head_skip, head)
            if head is not None and head_skip is not None
            else None
        )
        split = _single_part(data, separator, given) if fast else None
        if split is None:
            message, payload = _full_parse(data), None
        else:
            message, payload = split
        return _Walker(data, body_offset, limits, defects, payload).run(message)
    except Exception as exc:  # the parser's failure modes are not documented
        defects.append(f"parser_failed:{type(exc).__name__}")
    try:
        message = split_tree(data, limits.max_depth, limits.max_parts)
        return _Walker(data, body_offset, limits, defects).run(message)
    except Exception as exc:
        defects.append(f"parser_failed:{type(exc).__name__}")
    return _salvage(data, body_offset, limits, defects)


def _salvage(
    data: bytes, body_offset: int, limits: ParseLimits, defects: list[str]
) -> ParsedMessage:
    """The last resort: the top-level headers as far as they parse, the body
    as one text and the URLs in it."""
    walker = _Walker(data, body_offset, limits, defects)
    try:
        head = BytesParser(policy=policy.compat32).parsebytes(data[:body_offset], headersonly=True)
        headers = walker._headers(head)
    except Exception as exc:
        defects.append(f"headers_failed:{type(exc).__name__}")
        headers = []
    body = data[body_offset : body_offset + limits.max_part_bytes]
    text = decode_text(body)[: limits.max_text_chars]
    urls = UrlCollector(limits.max_urls)
    urls.add_text(text)
    return ParsedMessage(
        raw=data,
        headers=headers,
        body_offset=body_offset,
        text=text,
        urls=urls.urls,
        domains=urls.domains,
        defects=defects,
    )


def _full_parse(data: bytes) -> Message:
    return BytesParser(policy=policy.compat32).parsebytes(data)


class _Given(NamedTuple):
    """The caller's header block parse: ``head`` was parsed from ``data``,
    which holds the parsed text after its first ``skip`` bytes (an mbox
    ``From `` line)."""

    data: bytes
    skip: int
    head: Message


def _single_part(
    data: bytes, separator: re.Match[bytes] | None, given: _Given | None
) -> tuple[Message, bytes] | None:
    """The root's headers and payload when the full parse would give a
    single-part root whose body is exactly ``data[separator.end():]``; None
    when only the full parse can tell.

    The full parser ends the header block at the first line that is not a
    header line; a blank one is consumed, any other is pushed back into the
    body with a ``MissingHeaderBodySeparatorDefect``. ``separator`` is the
    first blank line (``_HEADER_END``): a header-only parse of the lines
    before it that takes every one as a header (``_clean``) gives the same
    headers and defects as the full parse. That parse is the caller's when
    it fits (``_head_fits``), else ``plain_header_block``'s split of a plain
    block (the stdlib's ``Message`` for it), else the stdlib's. The root's
    payload is then the rest of the text, whose bytes (ASCII with
    surrogateescape) are ``data[separator.end():]``.
    """
    if separator is None:
        return None
    body_offset = separator.end()
    block = data[:body_offset]
    # A compound root's Content-Type holds one of these (compat32 lower-cases
    # the type before ";"). Seen, the root is most likely compound: spare a
    # header parse the full parse would repeat. (A faster test than a regex.)
    lowered = block.lower()
    if b"multipart/" in lowered or b"message/" in lowered:
        return None
    try:
        if given is not None and _head_fits(data, body_offset, given):
            head = given.head
        else:
            # The block with its last line end, without the blank line.
            line_end = separator.start() + (2 if block[separator.start()] == 13 else 1)
            head_or_none = plain_header_block(block[:line_end])
            if head_or_none is None:
                head_or_none = BytesParser(policy=policy.compat32).parsebytes(
                    block, headersonly=True
                )
                if not _clean(head_or_none):
                    return None
            head = head_or_none
        # The test the full parser makes before it reads the body.
        if head.get_content_maintype() in ("multipart", "message"):
            return None
        return head, data[body_offset:]
    except Exception:  # let the full parse meet (and report) the same failure
        return None


def _head_fits(data: bytes, body_offset: int, given: _Given) -> bool:
    """Whether ``given.head``, parsed by ``parse_header_block`` from the
    header block of ``given.data`` (``data`` behind ``given.skip`` bytes),
    saw the lines the full parse of ``data`` reads as the header block.

    ``header_end`` finds only the first CRLF CRLF: it must be the separator
    ``_HEADER_END`` found (none earlier, LF-only or not), so the block ends
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
        and _clean(given.head)
    )


def _clean(head: Message) -> bool:
    """A header-only parse that took every line as a header line."""
    return _raw_payload(head) == "" and not any(
        isinstance(defect, MissingHeaderBodySeparatorDefect) for defect in head.defects
    )


class _Walker:
    """One message's walk: collects text, HTML, attachments and defects."""

    def __init__(
        self,
        data: bytes,
        body_offset: int,
        limits: ParseLimits,
        defects: list[str],
        root_body: bytes | None = None,
    ) -> None:
        self.data = data
        # The single-part root's payload from ``_single_part``, else None.
        self.root_body = root_body
        self.body_offset = body_offset
        self.limits = limits
        self.defects = defects
        self.texts: list[str] = []
        self.htmls: list[str] = []
        self.text_chars = 0
        self.html_chars = 0
        self.attachments: list[Attachment] = []
        self.part_types: list[str] = []
        self.charsets: list[str] = []

    def run(self, message: Message) -> ParsedMessage:
        headers = self._headers(message)
        parts = self._walk(message)
        html = "".join(self.htmls)
        html_text, links = html_to_text(html) if html else ("", [])
        text = "".join(self.texts)
        urls = UrlCollector(self.limits.max_urls)
        urls.add_text(text)
        for link in links:
            urls.add_link(link)
        urls.add_text(html_text)
        if urls.truncated:
            self.defects.append("urls_truncated")
        return ParsedMessage(
            raw=self.data,
            headers=headers,
            body_offset=self.body_offset,
            text=text,
            html=html,
            html_text=html_text,
            urls=urls.urls,
            domains=urls.domains,
            attachments=self.attachments,
            part_types=self.part_types,
            charsets=self.charsets,
            parts_count=parts,
            defects=self.defects,
        )

    def _headers(self, message: Message) -> list[tuple[str, str]]:
        # raw_items: items() wraps 8-bit values in Header objects that print
        # as U+FFFD; the raw string keeps the bytes for decode_header_value.
        items = list(message.raw_items())
        if len(items) > self.limits.max_headers:
            self.defects.append("headers_truncated")
            items = items[: self.limits.max_headers]
        for defect in message.defects:
            self.defects.append(type(defect).__name__)
        return [(str(name), self._header_value(str(value))) for name, value in items]

    def _header_value(self, raw: str) -> str:
        """One header's decoded value; its raw text when decoding fails."""
        try:
            return decode_header_value(raw)
        except Exception:  # never lose the other headers for one
            self.defects.append("header_undecodable")
            return raw.encode("utf-8", "replace").decode("utf-8")

    def _walk(self, root: Message) -> int:
        """Visit parts depth first without recursion; returns parts seen."""
        stack: list[tuple[Message, int]] = [(root, 0)]
        count = 0
        while stack:
            part, depth = stack.pop()
            if count >= self.limits.max_parts:
                self.defects.append("parts_truncated")
                break
            count += 1
            payload = _raw_payload(part) if self.root_body is None else self.root_body
            if isinstance(payload, list):
                if depth + 1 > self.limits.max_depth:
                    self.defects.append("depth_truncated")
                    continue
                stack.extend(
                    (child, depth + 1) for child in reversed(payload) if isinstance(child, Message)
                )
                continue
            leaf = payload if isinstance(payload, (str, bytes)) else ""
            try:
                self._leaf(part, leaf)
            except Exception as exc:  # one broken part must not lose the others
                self.defects.append(f"part_failed:{type(exc).__name__}")
                self._keep_failed_part(part, leaf)
        return count

    def _keep_failed_part(self, part: Message, payload: str | bytes) -> None:
        """A part ``_leaf`` failed on, kept as an attachment with the file
        name from its raw headers and its undecoded bytes, so the
        attachment checks still see it."""
        try:
            fields = " ".join(str(part.get(name, "")) for name in _NAMED_FIELDS)
            match = _RAW_FILENAME.search(fields)
            filename = match.group(1).strip("\"' ") if match else ""
            raw = payload if isinstance(payload, bytes) else surrogate_bytes(payload)
            data, _ = decode_transfer(
                raw, str(part.get("Content-Transfer-Encoding", "")), self.limits.max_part_bytes
            )
            content_type = str(part.get("Content-Type", "application/octet-stream"))
            self.attachments.append(
                Attachment(
                    filename=decode_text(_unquote_percent(filename))[:255],
                    content_type=content_type.split(";", 1)[0].strip().lower()[:100],
                    size=len(data),
                    payload=data[: self.limits.max_attachment_bytes],
                )
            )
        except Exception as exc:
            self.defects.append(f"part_lost:{type(exc).__name__}")

    def _leaf(self, part: Message, payload: str | bytes) -> None:
        # "text/plain charset=x" (no semicolon) is still text/plain.
        content_type = part.get_content_type().split(None, 1)[0].rstrip(";")
        self.part_types.append(content_type)
        disposition = str(part.get("Content-Disposition", "")).lower()
        # get_filename parses every parameter: only ask when a name is there.
        named = "name" in disposition or "name" in str(part.get("Content-Type", "")).lower()
        raw_name = part.get_filename() if named else None
        filename = decode_header_value(str(raw_name)) if raw_name else ""
        encoding = str(part.get("Content-Transfer-Encoding", ""))
        raw = payload if isinstance(payload, bytes) else surrogate_bytes(payload)
        data, truncated = decode_transfer(raw, encoding, self.limits.max_part_bytes)
        if truncated:
            self.defects.append("part_truncated")
        is_attachment = bool(filename) or disposition.startswith("attachment")
        if content_type in ("text/plain", "text/html") and not is_attachment:
            charset = _charset(part)
            if charset:
                self.charsets.append(charset)
            self._add_text(content_type, decode_text(data, charset))
            return
        self.attachments.append(
            Attachment(
                filename=filename,
                content_type=content_type,
                size=len(data),
                payload=data[: self.limits.max_attachment_bytes],
            )
        )

    def _add_text(self, content_type: str, text: str) -> None:
        room_text = self.limits.max_text_chars - self.text_chars
        room_html = self.limits.max_text_chars - self.html_chars
        room = room_text if content_type == "text/plain" else room_html
        if len(text) > room:
            self.defects.append("text_truncated")
            text = text[: max(room, 0)]
        if content_type == "text/plain":
            self.texts.append(text if not self.texts else "\n" + text)
            self.text_chars += len(text)
        else:
            self.htmls.append(text)
            self.html_chars += len(text)


def _unquote_percent(value: str) -> bytes:
    return _PERCENT.sub(lambda m: bytes([int(m.group(1), 16)]), surrogate_bytes(value))


def _raw_payload(part: Message) -> object:
    """The part's payload as parsed: its children, or its text (ASCII with
    the other bytes surrogate-escaped). Not ``get_payload()``: compat32
    decodes 8-bit text there by the charset parameter, replacing what does
    not fit (no charset: every 8-bit byte becomes U+FFFD), and ``_leaf``
    could not recover the bytes to decode them with its fallbacks."""
    return part.__dict__.get("_payload")


def _charset(part: Message) -> str:
    # A regex on the raw field: Message.get_param parses every parameter and
    # costs more than the rest of the leaf.
    match = _CHARSET.search(str(part.get("Content-Type", "")))
    return match.group(1).lower()[:40] if match else ""
