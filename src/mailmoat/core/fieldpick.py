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
"""

from __future__ import annotations

from collections.abc import Collection

from mailmoat.core.headers import header_end, name_and_value, raw_fields


def lower_head(message: bytes) -> bytes:
    """The header block (``header_end``), ASCII letters in lower case."""
    return message[: header_end(message)].lower()


def mentions(low_head: bytes, names: Collection[bytes]) -> bool:
    """False when no field of the block ``low_head`` (from ``lower_head``)
    can be named one of ``names`` (lower-case ASCII bytes)."""
    return any(name in low_head for name in names)


def fields_named(message: bytes, names: Collection[str]) -> tuple[tuple[str, str], ...]:
    """The fields of ``header_fields(message)`` whose lower-cased name is in
    ``names`` (lower-case ASCII), in order (see the module's contract)."""
    words = [name.encode("ascii") for name in names]
    found: list[tuple[str, str]] = []
    for field in raw_fields(message):
        raw_name, colon, _rest = field.partition(b":")
        if not colon:
            continue
        low = raw_name.lower()
        for word in words:
            if word in low:
                pair = name_and_value(field)
                if pair is not None and pair[0].lower() in names:
                    found.append(pair)
                break
    return tuple(found)
