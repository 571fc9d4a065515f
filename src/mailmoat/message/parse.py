"""``parse_message``: raw bytes to a bounded ``ParsedMessage``, never raising.

Contract: accepts any bytes (an RFC 5322 message, optionally behind an mbox
``From `` line, CRLF or LF line ends) and returns a ``ParsedMessage``. Work
is bounded by ``ParseLimits``; every cut and every failure is recorded in
``defects`` instead of raised. If the MIME parser itself fails, the result
still carries the raw body as text so content checks see something.

The stdlib ``email`` package with ``policy.compat32`` does the MIME
splitting: it is the fastest and most tolerant parser available. Written by
hand here is only what it lacks: an iterative, depth- and count-limited walk
(``Message.walk`` recurses without bounds), bounded payload decoding and the
charset fallbacks (see ``decode``), HTML reduction (``html``) and URL
extraction (``urls``).
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
from mailmoat.message.html import html_to_text
from mailmoat.message.model import Attachment, ParsedMessage, ParseLimits
from mailmoat.message.urls import UrlCollector

DEFAULT_LIMITS = ParseLimits()
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_CHARSET = re.compile(r"""charset\s*=\s*["']?([^"';\s]+)""", re.I)


def parse_message(raw: bytes, limits: ParseLimits | None = None) -> ParsedMessage:
    """Parse ``raw`` once for every content check; never raises."""
    limits = limits or DEFAULT_LIMITS
    defects: list[str] = []
    try:
        data = bytes(raw)
    except (TypeError, ValueError):
        data = b""
        defects.append("input_not_bytes")
    if data.startswith(b"From "):
        line_end = data.find(b"\n")
        data = data[line_end + 1 :] if line_end >= 0 else b""
    if len(data) > limits.max_input_bytes:
        data = data[: limits.max_input_bytes]
        defects.append("input_truncated")
    separator = _HEADER_END.search(data)
    body_offset = separator.end() if separator else len(data)
    try:
        message = BytesParser(policy=policy.compat32).parsebytes(data)
        return _Walker(data, body_offset, limits, defects).run(message)
    except Exception as exc:  # the parser's failure modes are not documented
        defects.append(f"parser_failed:{type(exc).__name__}")
        body = data[body_offset : body_offset + limits.max_part_bytes]
        text = decode_text(body)[: limits.max_text_chars]
        return ParsedMessage(
            raw=data, headers=[], body_offset=body_offset, text=text, defects=defects
        )


class _Walker:
    """One message's walk: collects text, HTML, attachments and defects."""

    def __init__(
        self, data: bytes, body_offset: int, limits: ParseLimits, defects: list[str]
    ) -> None:
        self.data = data
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
        return [(str(name), decode_header_value(str(value))) for name, value in items]

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
            payload = part.get_payload()
            if isinstance(payload, list):
                if depth + 1 > self.limits.max_depth:
                    self.defects.append("depth_truncated")
                    continue
                stack.extend(
                    (child, depth + 1) for child in reversed(payload) if isinstance(child, Message)
                )
                continue
            try:
                self._leaf(part, payload if isinstance(payload, str) else "")
            except Exception as exc:  # one broken part must not lose the others
                self.defects.append(f"part_failed:{type(exc).__name__}")
        return count

    def _leaf(self, part: Message, payload: str) -> None:
        # "text/plain charset=x" (no semicolon) is still text/plain.
        content_type = part.get_content_type().split(None, 1)[0].rstrip(";")
        self.part_types.append(content_type)
        disposition = str(part.get("Content-Disposition", "")).lower()
        # get_filename parses every parameter: only ask when a name is there.
        named = "name" in disposition or "name" in str(part.get("Content-Type", "")).lower()
        raw_name = part.get_filename() if named else None
        filename = decode_header_value(str(raw_name)) if raw_name else ""
        encoding = str(part.get("Content-Transfer-Encoding", ""))
        data, truncated = decode_transfer(
            surrogate_bytes(payload), encoding, self.limits.max_part_bytes
        )
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


def _charset(part: Message) -> str:
    # A regex on the raw field: Message.get_param parses every parameter and
    # costs more than the rest of the leaf.
    match = _CHARSET.search(str(part.get("Content-Type", "")))
    return match.group(1).lower()[:40] if match else ""
