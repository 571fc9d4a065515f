"""Value types of the message model: limits, attachments, the parsed message.

Contract: ``ParsedMessage`` is immutable after ``parse_message`` built it and
holds only decoded, bounded data (strings, small byte strings, lists). Header
lookups are case-insensitive and return the first occurrence. Nothing here
raises on odd content; derived values (addresses, dates, registered domains)
are computed lazily and fall back to empty values.
"""

from __future__ import annotations

import email.utils
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property, lru_cache


@dataclass(frozen=True, slots=True)
class ParseLimits:
    """Upper bounds on the work ``parse_message`` does for one message.

    Input beyond ``max_input_bytes`` is cut off before parsing; MIME parts
    past ``max_parts`` or nested deeper than ``max_depth`` are skipped; each
    part decodes at most ``max_part_bytes``; the text and HTML kept are capped
    at ``max_text_chars`` each; attachment payloads at ``max_attachment_bytes``.
    Every cut is recorded as a defect.
    """

    max_input_bytes: int = 32 * 1024 * 1024
    max_parts: int = 256
    max_depth: int = 16
    max_part_bytes: int = 4 * 1024 * 1024
    max_text_chars: int = 512 * 1024
    max_attachment_bytes: int = 1024 * 1024
    max_headers: int = 1000
    max_urls: int = 1000


@dataclass(frozen=True, slots=True)
class Attachment:
    """A non-text (or named) MIME leaf part; ``payload`` is bounded, ``size``
    is the decoded size before the bound was applied."""

    filename: str
    content_type: str
    size: int
    payload: bytes


@dataclass(frozen=True)
class ParsedMessage:
    """A message parsed once for every check that reads content.

    ``headers`` are the top-level header fields in original order, unfolded
    and RFC 2047-decoded. ``text`` joins all text/plain parts, ``html`` all
    text/html sources and ``html_text`` their rendering to plain text.
    ``urls`` and ``domains`` (lower-case host names) are distinct, in order of
    first appearance. ``raw`` is the message without a leading mbox ``From ``
    line; the body starts at ``raw[body_offset:]``.
    """

    raw: bytes
    headers: list[tuple[str, str]]
    body_offset: int
    text: str = ""
    html: str = ""
    html_text: str = ""
    urls: list[str] = field(default_factory=list)
    domains: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    part_types: list[str] = field(default_factory=list)
    charsets: list[str] = field(default_factory=list)
    parts_count: int = 0
    defects: list[str] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (any case), or None."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None

    def header_all(self, name: str) -> list[str]:
        """Every value of header ``name`` (any case), in order."""
        wanted = name.lower()
        return [value for key, value in self.headers if key.lower() == wanted]

    @property
    def body(self) -> bytes:
        return self.raw[self.body_offset :]

    @property
    def subject(self) -> str:
        return self.header("Subject") or ""

    @cached_property
    def from_addr(self) -> str:
        """The From address, lower case ("" when absent or unparseable)."""
        return _address(self.header("From") or "")

    @property
    def message_id(self) -> str:
        return (self.header("Message-ID") or "").strip()

    @cached_property
    def date(self) -> datetime | None:
        """The Date header as a datetime, None when absent or malformed."""
        value = self.header("Date")
        if not value:
            return None
        try:
            return email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None


def _address(value: str) -> str:
    return parse_address(value)[1].strip().lower()


# Values up to this long are remembered (a campaign repeats its From; longer
# ones are rare and would make the memo's size unbounded in bytes).
_ADDRESS_MEMO_MAX = 256


def parse_address(value: str) -> tuple[str, str]:
    """``email.utils.parseaddr(value)`` (display name, address), or
    ``("", "")`` when it raises; short values are remembered, as From is
    read by the message model and by the classifier's header shape."""
    if len(value) <= _ADDRESS_MEMO_MAX:
        return _parse_address_memo(value)
    return _parse_address(value)


def _parse_address(value: str) -> tuple[str, str]:
    try:
        return email.utils.parseaddr(value)
    except (TypeError, ValueError, IndexError):
        return "", ""


_parse_address_memo = lru_cache(maxsize=4096)(_parse_address)
