"""The MIME tree without recursion, for messages the stdlib parser fails on.

Contract: ``split_tree(data, max_depth, max_parts)`` returns the root
``Message`` of ``data`` with the same shape the stdlib parser (compat32)
gives (multipart parts hold a list of child messages, ``message/rfc822`` a
list of one, leaves their text), built by an explicit stack: no recursion,
so no ``RecursionError`` however deep the nesting. Compound parts below
``max_depth`` get an empty child list (the walker then records
``depth_truncated``); parts beyond ``max_parts`` are not split. Each part's
header block is parsed by the stdlib in headers-only mode, which does not
recurse; the body is sliced off before it, so a large part costs one regex
scan per level, not a line-by-line parse. Raises only what that header parse
raises (the caller salvages).

Why: the stdlib parser nests one generator per MIME level, so about a
thousand nested multiparts end in ``RecursionError`` and, before this
fallback, the whole message was read as one raw text with no header,
attachment or URL reaching any check.
"""

from __future__ import annotations

import re
from email import policy
from email.message import Message
from email.parser import Parser

_BLANK_LINE = re.compile(r"\r?\n\r?\n")


def split_tree(data: bytes, max_depth: int, max_parts: int) -> Message:
    # As BytesParser reads bytes: ASCII, other bytes surrogate-escaped.
    root = _parse_part(data.decode("ascii", "surrogateescape"))
    stack: list[tuple[Message, int]] = [(root, 0)]
    split = 0
    while stack:
        part, depth = stack.pop()
        body = part.__dict__.get("_payload")
        if not isinstance(body, str):
            continue
        maintype = part.get_content_maintype()
        if maintype not in ("multipart", "message"):
            continue
        if maintype == "message" and part.get_content_subtype() not in ("rfc822", "global"):
            continue
        if depth >= max_depth:
            part.set_payload([])  # the walker records the cut
            continue
        if split >= max_parts:
            continue
        split += 1
        if maintype == "message":
            children = [_parse_part(body)]
        else:
            boundary = part.get_boundary()
            if not boundary:
                continue
            children = [_parse_part(text) for text in _split(body, boundary)][:max_parts]
        part.set_payload(list[Message | str](children))
        stack.extend((child, depth + 1) for child in children)
    return root


def _parse_part(text: str) -> Message:
    """A part's header block parsed, the rest of ``text`` as its payload."""
    if text.startswith(("\r\n", "\n")):
        head, body = "", text[text.index("\n") + 1 :]
    elif separator := _BLANK_LINE.search(text):
        head, body = text[: separator.start()] + "\n", text[separator.end() :]
    else:
        head, body = text, ""
    part = Parser(policy=policy.compat32).parsestr(head, headersonly=True)
    # A line in the block that is no header line starts the body early.
    early = part.__dict__.get("_payload")
    part.set_payload(f"{early}\n{body}" if isinstance(early, str) and early else body)
    return part


def _split(body: str, boundary: str) -> list[str]:
    """The texts between the ``--boundary`` delimiter lines of ``body``, up to
    the closing ``--boundary--`` (or the end when it is missing); the line
    break before each delimiter belongs to the delimiter (RFC 2046 5.1.1)."""
    delimiter = re.compile(rf"^--{re.escape(boundary)}(--)?[ \t]*\r?$\n?", re.M)
    texts: list[str] = []
    start: int | None = None
    for match in delimiter.finditer(body):
        if start is not None:
            end = match.start()
            if body.endswith("\r\n", start, end):
                end -= 2
            elif body.endswith("\n", start, end):
                end -= 1
            texts.append(body[start:end])
        if match.group(1):
            return texts
        start = match.end()
    if start is not None:
        texts.append(body[start:])
    return texts
