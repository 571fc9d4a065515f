"""The texts SpamAssassin rules search, made from a parsed message.

Contract: every function takes a ``ParsedMessage`` and returns a list of
values, each a byte string seen as Latin-1 (decoded text is re-encoded as
UTF-8 first, as SpamAssassin with ``normalize_charset`` sees it), bounded:

- ``body_lines``: the Subject, then the rendered text (text parts and HTML
  rendered to text) as paragraphs, each paragraph one line (whitespace runs
  become one space), long ones cut into pieces of ``LINE_LIMIT``; at most
  ``BODY_LIMIT`` characters in all;
- ``rawbody_chunks``: the decoded text parts and HTML sources unrendered,
  cut at line ends into chunks of about ``LINE_LIMIT``;
- ``full_text``: the whole raw message (``FULL_LIMIT`` bytes at most);
- ``uris``: each URL the parser found;
- ``relays``: SpamAssassin's ``X-Spam-Relays-External`` pseudo-header,
  ``[ ip=... rdns=... helo=... by=... ident= envfrom=... intl=0 id=... auth=...
  msa=0 ]`` per relay, newest first: the connecting client (from the
  session), then each ``Received: from`` header (best effort parse), less
  the trusted ones at the top (loopback and private addresses, up to the
  first public one: SpamAssassin's inference without ``trusted_networks``).
  The same text serves ``X-Spam-Relays-Untrusted``;
- ``header_text(spec)``: a header as SpamAssassin's ``get`` gives it:
  every value followed by a newline (``Name``), the raw folded values
  (``Name:raw``), the first address (``Name:addr``) or display name
  (``Name:name``); pseudo-headers ``ALL`` (every ``Name: value`` line),
  ``ToCc`` (To and Cc), ``MESSAGEID`` (Message-Id and its variants),
  ``EnvelopeFrom`` (Return-Path). ``None`` when absent (the caller applies
  ``[if-unset: ...]`` or takes ""). Each header value is cut at
  ``HEADER_LIMIT`` characters.

Nothing here raises on odd content.
"""

from __future__ import annotations

import email.utils
import functools
import ipaddress
import re
from typing import Any

LINE_LIMIT = 2048
HEADER_LIMIT = 8 * 1024  # of each header value: a regex's work stays bounded
BODY_LIMIT = 256 * 1024
FULL_LIMIT = 256 * 1024
RELAY_HEADERS = frozenset({"x-spam-relays-external", "x-spam-relays-untrusted"})
UNSUPPORTED_HEADERS = frozenset(
    {"x-spam-relays-internal", "x-spam-relays-trusted", "x-spam-last-external"}
    | {"x-spam-last-trusted"}
)
_PARAGRAPH = re.compile(r"\n[ \t\r\f\v]*\n\s*")
_MESSAGE_IDS = ("message-id", "resent-message-id", "x-message-id")


def as_bytes(text: str) -> str:
    """``text`` as its UTF-8 bytes, seen as Latin-1 (ASCII stays as it is)."""
    if text.isascii():
        return text
    return text.encode("utf-8", "surrogateescape").decode("latin-1")


def _pieces(line: str) -> list[str]:
    if len(line) <= LINE_LIMIT:
        return [line]
    pieces: list[str] = []
    while len(line) > LINE_LIMIT:
        cut = line.rfind(" ", LINE_LIMIT // 2, LINE_LIMIT)
        cut = LINE_LIMIT if cut < 0 else cut + 1
        pieces.append(line[:cut])
        line = line[cut:]
    pieces.append(line)
    return pieces


def subject_lines(message: Any) -> list[str]:
    """The lines ``body_lines`` starts with when it includes the Subject."""
    return _pieces(as_bytes(message.subject[:BODY_LIMIT]))


def body_lines(message: Any, subject: bool = True) -> list[str]:
    text = "\n\n".join(t for t in (message.text, message.html_text) if t)[:BODY_LIMIT]
    lines = subject_lines(message) if subject else []
    for paragraph in _PARAGRAPH.split(text):
        # Whitespace runs made one space, the ends stripped (the same
        # whitespace as ``\s`` in a str regex: ``str.isspace``).
        line = " ".join(paragraph.split())
        if line:
            lines.extend(_pieces(as_bytes(line)))
    return lines


def rawbody_chunks(message: Any) -> list[str]:
    text = as_bytes("\n".join(t for t in (message.text, message.html) if t)[:BODY_LIMIT])
    chunks: list[str] = []
    start = 0
    while start < len(text):
        end = text.find("\n", start + LINE_LIMIT)
        end = len(text) if end < 0 else end + 1
        chunks.append(text[start:end])
        start = end
    return chunks


def full_text(message: Any) -> list[str]:
    raw: bytes = message.raw[:FULL_LIMIT]
    return [raw.replace(b"\r\n", b"\n").decode("latin-1")]


def uris(message: Any) -> list[str]:
    return [as_bytes(url) for url in message.urls]


def raw_headers(message: Any) -> list[tuple[str, str]]:
    """(name, raw value with folding kept) of every top-level header field."""
    head = message.raw[: message.body_offset].decode("latin-1").replace("\r\n", "\n")
    fields: list[tuple[str, str]] = []
    for line in head.split("\n"):
        if line[:1] in (" ", "\t") and fields:
            name, value = fields[-1]
            fields[-1] = (name, f"{value}\n{line}")
        elif ":" in line:
            name, _, value = line.partition(":")
            fields.append((name.strip(), value.lstrip(" \t")))
    return fields


class Fields(dict[str, list[str]]):
    """Header values by lower-case name, in order; ``pairs`` keeps them all."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        super().__init__()
        kept: list[tuple[str, str]] = []
        get = self.get
        for name, value in pairs:
            if len(value) > HEADER_LIMIT:
                value = value[:HEADER_LIMIT]
            kept.append((name, value))
            key = name.lower()
            found = get(key)
            if found is None:
                self[key] = [value]
            else:
                found.append(value)
        self.pairs = kept


# SpamAssassin recognises its pseudo-headers by exact spelling.
PSEUDO_SPELLINGS = {"ToCc": "tocc", "MESSAGEID": "messageid", "EnvelopeFrom": "envelopefrom"}
PSEUDO_FIELDS = {
    "tocc": ("to", "cc"),
    "messageid": _MESSAGE_IDS,
    "envelopefrom": ("return-path",),
}


def header_text(spec: str, fields: Fields) -> str | None:
    """The text of header ``spec`` (lower case: ``name[:raw|:addr|:name]``),
    None if absent; ``fields``: decoded or raw, as the spec asks."""
    name, _, modifier = spec.partition(":")
    if name == "all":
        return "".join(f"{n}: {v}\n" for n, v in fields.pairs) or None
    values = [v for wanted in PSEUDO_FIELDS.get(name, (name,)) for v in fields.get(wanted, ())]
    if not values:
        return None
    if modifier.startswith(("addr", "name")):
        display, address = _first_address(tuple(values))
        if name == "envelopefrom" or not address:
            address = values[0].strip().strip("<>")
        return display if modifier.startswith("name") else address
    return "".join(f"{v}\n" for v in values)


@functools.lru_cache(maxsize=4096)
def _first_address(values: tuple[str, ...]) -> tuple[str, str]:
    """(display name, address) of the first address in ``values`` (the same
    senders come back message after message: parsed once)."""
    addresses = email.utils.getaddresses(values)
    return addresses[0] if addresses else ("", "")


_IP = re.compile(r"\[?(?:IPv6:)?(\d{1,3}(?:\.\d{1,3}){3}|[0-9a-fA-F:]*:[0-9a-fA-F:.]+)\]?")
_FROM = re.compile(r"^\s*from\s+(\S+)(.*?)\s+by\s+(\S+)(.*)$", re.S | re.I)
_RDNS_IP = re.compile(r"\(\s*([^\s\[\]()]+)\s+\[")
_HELO = re.compile(r"\b(?:helo|HELO)[=\s]+([^\s)\]]+)")
_ID = re.compile(r"\bid\s+<?([^\s;>]+)", re.I)
_AUTH = re.compile(r"\bwith\s+(E?SMTPS?A|LMTPS?A|ASMTP)\b|\(authenticated", re.I)
# What every match of each starts with (after its zero-width \b), lower case
# for the case-insensitive ones: each search starts where the first occurs.
_HELO_STARTS = ("helo", "HELO")
_ID_STARTS = ("id",)
_AUTH_STARTS = ("with", "(authenticated")


def _search_from(
    regex: re.Pattern[str], text: str, starts: tuple[str, ...], folded: bool
) -> re.Match[str] | None:
    """``regex.search(text)``, begun where the first of ``starts`` occurs in
    ``text`` (lowered when ``folded``; a Latin-1 text lowers one character
    to one) instead of trying every place before it: every match begins with
    one of them, and ``search`` from a position still reads the character
    before it for ``\b``. None at once when none occurs."""
    haystack = text.lower() if folded else text
    first = -1
    for start in starts:
        at = haystack.find(start)
        if at >= 0 and (first < 0 or at < first):
            first = at
    return None if first < 0 else regex.search(text, first)


def relay(ip: str, rdns: str, helo: str, by: str, envfrom: str, ident: str, auth: str) -> str:
    return (
        f"[ ip={ip} rdns={rdns} helo={helo} by={by} ident= envfrom={envfrom} intl=0 "
        f"id={ident} auth={auth} msa=0 ]"
    )


def parse_received(value: str) -> tuple[str, str] | None:
    """The client IP and relay text of a ``Received: from`` header, None
    when it has no client IP."""
    match = _FROM.match(value.replace("\n", " "))
    if match is None:
        return None
    first, middle, by, rest = match.groups()
    by = by.rstrip(";")
    found = _IP.search(middle) or _IP.fullmatch(first.strip("[]"))
    if found is None:
        return None
    rdns_match = _RDNS_IP.search(middle)
    rdns = rdns_match.group(1) if rdns_match else ""
    rdns = "" if rdns.lower() in ("unknown", found.group(1)) else rdns
    helo_match = _search_from(_HELO, middle, _HELO_STARTS, False)
    helo = helo_match.group(1) if helo_match else first
    helo = "" if helo.lower() == "unknown" else helo.strip("()")
    ident_match = _search_from(_ID, rest, _ID_STARTS, True)
    auth_match = _search_from(_AUTH, middle + rest, _AUTH_STARTS, True)
    auth = (auth_match.group(1) or "authenticated") if auth_match else ""
    ip = found.group(1)
    return ip, relay(ip, rdns, helo, by, "", ident_match.group(1) if ident_match else "", auth)


_OWN_NETWORKS = tuple(
    ipaddress.ip_network(net)
    for net in (
        "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16",
        "100.64.0.0/10", "::1/128", "fc00::/7", "fe80::/10",
    )
)  # fmt: skip


@functools.lru_cache(maxsize=4096)
def trusted_ip(ip: str) -> bool:
    """Loopback, RFC 1918, shared (CGNAT), link-local and unique-local
    addresses: relays inside our own network."""
    try:
        address = ipaddress.ip_address(ip.split("%")[0])
    except ValueError:
        return False
    return any(address in net for net in _OWN_NETWORKS if net.version == address.version)


def relays(message: Any, session: Any, mail_from: str) -> str:
    """The untrusted relays, newest first. Trust is inferred as SpamAssassin
    does without ``trusted_networks``: from the newest relay down, relays
    from loopback and private addresses are ours (trusted) until the first
    public one; it and every older relay are untrusted (external). The
    connecting client comes first when the message arrives over SMTP."""
    found: list[tuple[str, str]] = []
    ip = getattr(session, "client_ip", "") or ""
    if ip:
        found.append((ip, relay(ip, session.client_rdns, session.helo, "", mail_from, "", "")))
    for name, value in message.headers:
        if name.lower() == "received":
            parsed = parse_received(as_bytes(value))
            if parsed is not None:
                found.append(parsed)
    start = 0
    while start < len(found) and trusted_ip(found[start][0]):
        start += 1
    untrusted = [text for _ip, text in found[start:]]
    return " ".join(untrusted) + "\n" if untrusted else ""
