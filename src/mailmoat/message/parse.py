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

Fast paths (``fastpath``): a single-part root's body is sliced from the
input and handed to the walk as the root's payload, and a plain multipart
tree is split on its delimiter lines with ``bytes.find``, because the full
parser would only rebuild those same bodies line by line (the bulk of its
cost). The header block is the caller's parse (``Transaction.headers``)
when it provably covers the same lines (also behind an mbox ``From ``
line), else ``core.headers``' own split of a plain block, else the
stdlib's. Anything else takes the full parse, so the result is the same
either way.
"""

from __future__ import annotations

import re
from email import policy
from email.message import Message
from email.parser import BytesParser

from mailmoat.message.decode import (
    decode_header_value,
    decode_text,
    decode_transfer,
    surrogate_bytes,
)
from mailmoat.message.fallback import split_tree
from mailmoat.message.fastpath import Given, header_separator, raw_payload, split_message
from mailmoat.message.html import html_to_text
from mailmoat.message.model import Attachment, ParsedMessage, ParseLimits
from mailmoat.message.urls import UrlCollector

DEFAULT_LIMITS = ParseLimits()
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
    separator = header_separator(data)
    body_offset = separator.end if separator else len(data)
    try:
        given = (
            Given(given_data, head_skip, head)
            if head is not None and head_skip is not None
            else None
        )
        split = split_message(data, separator, given) if fast else None
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
        headers: list[tuple[str, str]] = []
        for name, raw in items:
            value = str(raw)
            # What decode_header_value gives for one plain line of ASCII.
            plain = "\n" not in value and "=?" not in value and value.isascii()
            headers.append((str(name), value.strip() if plain else self._header_value(value)))
        return headers

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
            payload = raw_payload(part) if self.root_body is None else self.root_body
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
        fields = _Fields(part)
        # "text/plain charset=x" (no semicolon) is still text/plain.
        content_type = fields.content_type().split(None, 1)[0].rstrip(";")
        self.part_types.append(content_type)
        disposition = str(fields.get("content-disposition")).lower()
        # get_filename parses every parameter: only ask when a name is there.
        named = "name" in disposition or "name" in str(fields.get("content-type")).lower()
        raw_name = part.get_filename() if named else None
        filename = decode_header_value(str(raw_name)) if raw_name else ""
        encoding = str(fields.get("content-transfer-encoding"))
        raw = payload if isinstance(payload, bytes) else surrogate_bytes(payload)
        data, truncated = decode_transfer(raw, encoding, self.limits.max_part_bytes)
        if truncated:
            self.defects.append("part_truncated")
        is_attachment = bool(filename) or disposition.startswith("attachment")
        if content_type in ("text/plain", "text/html") and not is_attachment:
            charset = _charset(str(fields.get("content-type")))
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


def _charset(content_type: str) -> str:
    # A regex on the raw field: Message.get_param parses every parameter and
    # costs more than the rest of the leaf.
    match = _CHARSET.search(content_type)
    return match.group(1).lower()[:40] if match else ""


class _Fields:
    """The fields a leaf reads, found in one pass over its header fields;
    each value as ``Message.get`` returns it (the first of its name, any
    case, through the policy's ``header_fetch_parse``)."""

    _NAMES = frozenset({"content-type", "content-disposition", "content-transfer-encoding"})

    def __init__(self, part: Message) -> None:
        self.part = part
        self.raw: dict[str, tuple[str, str]] = {}
        for name, value in part.raw_items():
            key = name.lower()
            if key in self._NAMES and key not in self.raw:
                self.raw[key] = (name, value)

    def get(self, key: str) -> object:
        """``part.get(key, "")``, for a lower-case ``key`` of ``_NAMES``."""
        field = self.raw.get(key)
        return "" if field is None else self.part.policy.header_fetch_parse(*field)

    def content_type(self) -> str:
        """``part.get_content_type()``."""
        field = self.raw.get("content-type")
        if field is None:
            return self.part.get_default_type()
        value = self.part.policy.header_fetch_parse(*field)
        ctype = str(value).partition(";")[0].strip().lower()
        return ctype if ctype.count("/") == 1 else "text/plain"
