"""Picking a few named header fields without unfolding and decoding them all.

Contract: ``fields_named(message, names)`` equals
``tuple(f for f in header_fields(message) if f[0].lower() in names)``
(``mailmoat.core.headers.header_fields``: the raw top-level fields as
(name, unfolded value)) for ``names`` given in lower case, in the same order;
``mentions(low_head, names)`` tells cheaply that none of ``names`` can be
there. Pure functions over bytes; they never raise.

Why it is the same: a field's name is the text before its first colon,
decoded as ASCII (other bytes become U+FFFD) and stripped. A name equal to
an ASCII word in lower case therefore has that word's bytes, in any case,
inside the raw name, and so inside the lower-cased header block: a field
whose lower-cased raw name lacks the word as a substring cannot match and is
neither decoded nor unfolded; the others get the exact test.

How: each place the block (lower-cased) holds one of the words is taken
back to the start of its field (lines end at LF; a line starting with a
space or a tab continues a field, as in ``raw_fields``) and forward to its
end, and only that field is read; a word after a colon on its own line is
past the field's name and is skipped at once. A block with a lone CR (which
also ends a line) is read field by field through ``raw_fields``. Linear in
the block: a field is read once however often the words occur in it.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from mailmoat.core.headers import header_end, name_and_value, raw_fields

_LONE_CR = re.compile(rb"\r(?!\n)")


def lower_head(message: bytes) -> bytes:
    """The header block (``header_end``), ASCII letters in lower case."""
    return message[: header_end(message)].lower()


def mentions(low_head: bytes, names: Collection[bytes]) -> bool:
    """False when no field of the block ``low_head`` (from ``lower_head``)
    can be named one of ``names`` (lower-case ASCII bytes)."""
    return any(name in low_head for name in names)


def fields_named(
    message: bytes, names: Collection[str], low_head: bytes | None = None
) -> tuple[tuple[str, str], ...]:
    """The fields of ``header_fields(message)`` whose lower-cased name is in
    ``names`` (lower-case ASCII), in order (see the module's contract).
    ``low_head``: ``lower_head(message)`` when the caller has it."""
    low = lower_head(message) if low_head is None else low_head
    words = [name.encode("ascii") for name in names]
    block = message[: len(low)]
    if _LONE_CR.search(block):  # a lone CR ends a line too
        return _split_and_pick(message, names, words)
    found: list[tuple[str, str]] = []
    field_end = 0
    for at in sorted(at for word in words for at in _occurrences(low, word)):
        if at < field_end:  # in the field just read
            continue
        # Lines end at LF (no lone CR); a line starting with a space or a tab
        # continues the field (``raw_fields``), the first line of the block
        # excepted. A colon earlier on the line ("Received: from"): the
        # field's name ended before this word.
        start = block.rfind(b"\n", 0, at) + 1
        if block.find(b":", start, at) >= 0:
            continue
        while start and block[start] in b" \t":
            start = block.rfind(b"\n", 0, start - 1) + 1
        field_end = block.find(b"\n", at) + 1 or len(block)
        while field_end < len(block) and block[field_end] in b" \t":
            field_end = block.find(b"\n", field_end) + 1 or len(block)
        _pick(block[start:field_end], names, words, found)
    return tuple(found)


def _occurrences(low: bytes, word: bytes) -> list[int]:
    found: list[int] = []
    at = low.find(word)
    while at >= 0:
        found.append(at)
        at = low.find(word, at + 1)
    return found


def _pick(
    field: bytes, names: Collection[str], words: list[bytes], found: list[tuple[str, str]]
) -> None:
    """Add ``field``'s (name, value) to ``found`` when its name is one of ``names``."""
    raw_name, colon, _rest = field.partition(b":")
    if not colon:
        return
    low = raw_name.lower()
    for word in words:
        if word in low:
            pair = name_and_value(field)
            if pair is not None and pair[0].lower() in names:
                found.append(pair)
            return


def _split_and_pick(
    message: bytes, names: Collection[str], words: list[bytes]
) -> tuple[tuple[str, str], ...]:
    """``fields_named`` the long way: every field of ``raw_fields``."""
    found: list[tuple[str, str]] = []
    for field in raw_fields(message):
        _pick(field, names, words, found)
    return tuple(found)
