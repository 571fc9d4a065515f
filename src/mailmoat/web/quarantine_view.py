"""The quarantine as the dashboard shows it: search, pages, a safe preview.

Contract (pure functions over ``QuarantinedMessage`` lists and raw bytes, no
I/O):

- ``QuarantineQuery.from_params(params)`` reads ``sender``, ``rcpt``,
  ``subject``, ``reason`` (a symbol name or part of one), ``queue_id``,
  ``since``/``until`` (``YYYY-MM-DD``, UTC, both days included) and ``page``
  (from 1); anything malformed is ignored (an unreadable date) or clamped (the
  page), never an error. Text matches are case-insensitive substrings.
- ``select(items, query)`` keeps the matching messages (order kept);
  ``paginate(items, page, size)`` cuts one page, the page number clamped to
  the pages there are.
- ``preview(raw)`` gives the header fields and the first ``PREVIEW_LINES``
  lines of the message's text (its plain-text part, else the text of its
  HTML part with the markup removed) and the attachment names, as plain
  strings: the page escapes them, nothing is rendered as HTML. It never
  raises (``parse_message`` records what it cannot read).
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from mailmoat.delivery.quarantine import QuarantinedMessage
from mailmoat.message import parse_message

PAGE_SIZE = 50
PREVIEW_LINES = 40
PREVIEW_LINE_CHARS = 300
MAX_HEADERS = 100
DAY = 86_400
FILTERS = ("sender", "rcpt", "subject", "reason", "queue_id", "since", "until")


def _day(text: str) -> float | None:
    try:
        return float(calendar.timegm(time.strptime(text.strip(), "%Y-%m-%d")))
    except ValueError:
        return None


@dataclass(frozen=True)
class QuarantineQuery:
    sender: str = ""
    rcpt: str = ""
    subject: str = ""
    reason: str = ""
    queue_id: str = ""
    since: str = ""
    until: str = ""
    page: int = 1

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> QuarantineQuery:
        values = {name: str(params.get(name, "")).strip()[:200] for name in FILTERS}
        try:
            page = max(1, int(params.get("page", "1")))
        except ValueError:
            page = 1
        return cls(**values, page=page)

    def filters(self) -> dict[str, str]:
        """The non-empty filters (for links that keep them)."""
        return {name: getattr(self, name) for name in FILTERS if getattr(self, name)}

    def matches(self, item: QuarantinedMessage) -> bool:
        def has(needle: str, *haystack: str) -> bool:
            return not needle or any(needle.lower() in (h or "").lower() for h in haystack)

        start, end = _day(self.since), _day(self.until)
        return (
            has(self.sender, item.mail_from)
            and has(self.rcpt, *(item.rcpts or []))
            and has(self.subject, item.subject)
            and has(self.reason, *(item.symbols or {}))
            and has(self.queue_id, item.queue_id)
            and (start is None or item.time >= start)
            and (end is None or item.time < end + DAY)
        )


def select(items: Sequence[QuarantinedMessage], query: QuarantineQuery) -> list[QuarantinedMessage]:
    return [item for item in items if query.matches(item)]


@dataclass(frozen=True)
class Page:
    items: list[QuarantinedMessage]
    number: int
    pages: int
    total: int
    size: int

    @property
    def first(self) -> int:
        """1-based position of the first item shown (0 when none)."""
        return (self.number - 1) * self.size + 1 if self.items else 0

    @property
    def last(self) -> int:
        return self.first + len(self.items) - 1 if self.items else 0


def paginate(items: Sequence[QuarantinedMessage], page: int, size: int = PAGE_SIZE) -> Page:
    pages = max(1, -(-len(items) // size))
    number = min(max(1, page), pages)
    start = (number - 1) * size
    return Page(list(items[start : start + size]), number, pages, len(items), size)


@dataclass(frozen=True)
class Preview:
    headers: list[tuple[str, str]]
    lines: list[str]
    more_lines: bool
    source: str  # "text", "html" (its text) or "none"
    attachments: list[str] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)


def preview(raw: bytes, max_lines: int = PREVIEW_LINES) -> Preview:
    parsed = parse_message(raw)
    headers = [
        (name, " ".join(value.split())[:1000]) for name, value in parsed.headers[:MAX_HEADERS]
    ]
    if parsed.text.strip():
        text, source = parsed.text, "text"
    elif parsed.html_text.strip():
        text, source = parsed.html_text, "html"
    else:
        text, source = "", "none"
    lines = [line.rstrip()[:PREVIEW_LINE_CHARS] for line in text.strip("\n").splitlines()]
    attachments = [f"{a.filename or '(no name)'} ({a.content_type})" for a in parsed.attachments]
    return Preview(
        headers,
        lines[:max_lines],
        len(lines) > max_lines,
        source,
        attachments,
        list(parsed.defects[:20]),
    )
