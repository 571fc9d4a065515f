"""HTML reduced to text, and the links it carries.

Contract: ``html_to_text(source)`` returns (text, links) for any string and
never raises. Scripts, styles and comments vanish; block-level tags become
line breaks; inline tags vanish without a space, so ``V<b></b>iagra`` and
``V<!-- x -->iagra`` read as one word, as a human sees them. Entities are
decoded. ``links`` are the raw values of href/src/action/background
attributes, in document order.

Why by hand: ``html.parser.HTMLParser`` is several times slower on large
spam HTML and stops at some malformed markup; a spam filter needs only the
visible words and the link targets, which a few linear regexes give.
"""

from __future__ import annotations

import html
import re

_OPENER = re.compile(r"<!--|<(script|style)\b", re.I)
_CLOSERS = {
    "": re.compile(r"-->"),
    "script": re.compile(r"</script\s*>", re.I),
    "style": re.compile(r"</style\s*>", re.I),
}
_BLOCK = re.compile(
    r"<\s*/?\s*(?:br|p|div|tr|td|th|li|ul|ol|table|h[1-6]|blockquote|hr|pre|center|body)\b[^>]*>",
    re.I,
)
_TAG = re.compile(r"<[^>]{0,4000}>", re.S)
_OPEN_TAG = re.compile(r"<[a-zA-Z][^>]{0,4000}=[^>]{0,4000}>")
_LINK_ATTR = re.compile(
    r"""\b(?:href|src|action|background)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>"']+))""", re.I
)
# _LINK_ATTR for lower-case text. The word boundary, checked after the first
# letter, lets the regex engine skip to the positions holding h, s, a or b
# (a leading ``\b`` makes it try every position).
_ASCII_LINK_ATTR = re.compile(
    r"""(?:h(?<!\wh)ref|s(?<!\ws)rc|a(?<!\wa)ction|b(?<!\wb)ackground)"""
    r"""\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>"']+))"""
)


def html_to_text(source: str) -> tuple[str, list[str]]:
    """Visible text and link targets of an HTML document or fragment."""
    links = _links(_OPEN_TAG.findall(source))
    text = _strip_invisible(source)
    text = _BLOCK.sub("\n", text)
    text = _TAG.sub("", text)
    text = html.unescape(text)
    # Blank lines (most, once tags are gone) are dropped before any split.
    text = "\n".join(
        [" ".join(line.split()) for line in text.split("\n") if line and not line.isspace()]
    )
    return text, [html.unescape(link).strip() for link in links if link.strip()]


def _links(tags: list[str]) -> list[str]:
    """The link attribute values of ``tags``, as ``_LINK_ATTR`` finds them
    tag by tag (a scan of the whole document for attribute names is several
    times slower). Searched in the tags joined, one call instead of one per
    tag: the same matches unless one runs past its tag, which only a quoted
    value can and which then holds the tag's closing ``>`` (no tag holds one
    before its end); then tag by tag."""
    joined = "".join(tags)
    found = _link_values(joined) if joined.isascii() else _LINK_ATTR.findall(joined)
    if any(">" in double or ">" in single for double, single, _ in found):
        found = [values for tag in tags for values in _LINK_ATTR.findall(tag)]
    return [a or b or c for a, b, c in found]


def _link_values(text: str) -> list[tuple[str, str, str]]:
    """``_LINK_ATTR.findall(text)`` for ASCII ``text``, several times faster:
    ``_ASCII_LINK_ATTR`` runs on the lower-cased text (the same length and
    the same matches: ignoring case changes only ASCII letters there), its
    groups are sliced from ``text``."""
    # A group that took no part spans -1:-1, an empty slice, as in findall.
    return [
        (text[m.start(1) : m.end(1)], text[m.start(2) : m.end(2)], text[m.start(3) : m.end(3)])
        for m in _ASCII_LINK_ATTR.finditer(text.lower())
    ]


def _strip_invisible(source: str) -> str:
    """Drop comments, scripts and styles in one linear pass. An opener
    without its closer is dropped alone; once a closer is known to be absent
    it is not searched for again (no quadratic rescans on hostile input)."""
    out: list[str] = []
    absent: set[str] = set()
    pos = 0
    while (opener := _OPENER.search(source, pos)) is not None:
        kind = (opener.group(1) or "").lower()
        out.append(source[pos : opener.start()])
        closer = None if kind in absent else _CLOSERS[kind].search(source, opener.end())
        if closer is None:
            absent.add(kind)
            pos = opener.end()
        else:
            pos = closer.end()
    out.append(source[pos:])
    return "".join(out)
