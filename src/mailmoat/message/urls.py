"""URLs and host names found in message text and HTML links.

Contract: ``UrlCollector`` accumulates distinct normalised URLs and host
names (lower case, in order of first appearance, at most ``limit`` URLs) and
never raises. Normalisation undoes the common obfuscations: ``hxxp://``,
``[.]``/``(dot)`` in place of dots, percent-encoded host names, user-info
prefixes (``http://bank.com@evil.example/``), decimal/hex IPv4 hosts, ports,
trailing punctuation. Bare ``www.`` names and bare names under common
top-level domains count as URLs too, as a mail client would link them.

Why by hand: ``urllib.parse`` neither finds URLs in prose nor undoes these
tricks, and it raises on some hostile input (bad IPv6 brackets, ports).
"""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import unquote

_DOTS = re.compile(r"\s?(?:\[\.\]|\(\.\)|\[dot\]|\(dot\)|\{dot\})\s?", re.I)
# What every match of ``_DOTS`` holds; searched for first, as the leading
# optional space makes ``_DOTS`` try every position of a text.
_DOT_WORD = re.compile(r"\[\.\]|\(\.\)|\[dot\]|\(dot\)|\{dot\}", re.I)
_SCHEMED = r"(?:h(?:tt|xx|\*\*)ps?|ftp)://[^\s<>\"'\])}]+"
_WWW = r"www\d{0,3}\.[^\s<>\"'\])}]+"
_TLDS = (
    "com|net|org|info|biz|us|uk|de|ru|cn|jp|kr|tw|br|fr|it|nl|ca|au|ws|cc|tv|"
    "io|co|me|eu|in|pl|es|se|ch|be|at|nu|to|mx|ar|cl|hk|sg|edu|gov|mil|int"
)
_BARE = r"(?<![@\w.-])(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.){1,6}(?:" + _TLDS + r")(?![\w-])"
_IN_TEXT = re.compile(rf"{_SCHEMED}|{_WWW}|{_BARE}", re.I)
_SCHEME = re.compile(r"^(?:h(?:tt|xx|\*\*)p(s?)|(ftp))://", re.I)
_HOST_OK = re.compile(r"^[a-z0-9\-._~\u00a1-\uffff]+\.[a-z0-9\-\u00a1-\uffff]{2,}$")
_TRAILING = ".,;:!?'\")]}>*"


class UrlCollector:
    """Distinct URLs and hosts, bounded by ``limit`` URLs."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.urls: list[str] = []
        self.domains: list[str] = []
        self._seen_urls: set[str] = set()
        self._seen_domains: set[str] = set()
        self._seen_raw: set[str] = set()
        self.truncated = False

    def add_text(self, text: str) -> None:
        """Every URL written in running text."""
        if (".]" in text or ".)" in text or "dot" in text or "DOT" in text) and _DOT_WORD.search(
            text
        ):  # the substitution only where it has work
            text = _DOTS.sub(".", text)
        # Whitespace-split first: the regex then only runs on distinct words
        # with an inner dot (not just a full stop) or a scheme, which is many
        # times faster than scanning every position.
        for word in dict.fromkeys(text.split()):
            if "." not in word and ":" not in word:  # no stem to look at
                continue
            stem = word.rstrip(_TRAILING)
            if "." not in stem and "://" not in stem:
                continue
            for match in _IN_TEXT.finditer(word):
                if not self.add(match.group(0)):
                    return

    def add_link(self, link: str) -> None:
        """An href/src value: absolute, protocol-relative or mailto."""
        lower = link[:10].lower()
        if lower.startswith("mailto:"):
            host = link[7:].split("?", 1)[0].rpartition("@")[2]
            self._add_domain(_clean_host(host))
        elif lower.startswith("//"):
            self.add("http:" + link)
        elif "://" in lower or lower.startswith("www"):
            # Every obfuscated dot holds one of these brackets.
            has_bracket = "[" in link or "(" in link or "{" in link
            self.add(_DOTS.sub(".", link) if has_bracket else link)

    def add(self, candidate: str) -> bool:
        """Normalise and record one URL; False once the limit is reached."""
        if len(self.urls) >= self.limit:
            self.truncated = True
            return False
        if candidate in self._seen_raw:
            return True
        self._seen_raw.add(candidate)
        normalised = normalise_url(candidate)
        if normalised is None:
            return True
        url, host = normalised
        if url not in self._seen_urls:
            self._seen_urls.add(url)
            self.urls.append(url)
        self._add_domain(host)
        return True

    def _add_domain(self, host: str) -> None:
        if host and host not in self._seen_domains:
            self._seen_domains.add(host)
            self.domains.append(host)


# Candidates up to this long are remembered: links repeat from message to
# message (a campaign's, a mailing list's footer); longer ones are rare and
# would make the memo's size unbounded in bytes.
_NORMALISED_MEMO_MAX = 256


def normalise_url(candidate: str) -> tuple[str, str] | None:
    """(``scheme://host/rest``, host) for a URL-ish string, None if no host."""
    if len(candidate) <= _NORMALISED_MEMO_MAX:
        return _normalise_memo(candidate)
    return _normalise(candidate)


def _normalise(candidate: str) -> tuple[str, str] | None:
    text = candidate.strip().rstrip(_TRAILING)
    scheme_match = _SCHEME.match(text)
    if scheme_match:
        scheme = "ftp" if scheme_match.group(2) else "http" + scheme_match.group(1).lower()
        rest = text[scheme_match.end() :]
    else:
        scheme, rest = "http", text
    cut = len(rest)
    for sep in "/?#\\":
        index = rest.find(sep)
        if 0 <= index < cut:
            cut = index
    authority, path = rest[:cut], rest[cut:]
    host = _clean_host(authority.rpartition("@")[2])
    if not host:
        return None
    return f"{scheme}://{host}{path}", host


_normalise_memo = lru_cache(maxsize=4096)(_normalise)


def _clean_host(authority: str) -> str:
    host = authority
    if "%" in host:
        host = unquote(host)
    host = host.rpartition("@")[2]
    if host.startswith("["):
        return ""
    host = host.split(":", 1)[0].strip().strip(".").lower()
    if host.isdigit():
        return _int_ip(int(host))
    if host.startswith("0x"):
        try:
            return _int_ip(int(host, 16))
        except ValueError:
            return ""
    if not _HOST_OK.match(host) or ".." in host:
        return ""
    return host


def _int_ip(value: int) -> str:
    if not 0 < value < 2**32:
        return ""
    return ".".join(str((value >> shift) & 255) for shift in (24, 16, 8, 0))
