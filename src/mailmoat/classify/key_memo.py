"""Per-process memos of feature key hashes, for ``features.extract``.

Contract: ``key_hash(key)`` is the 64-bit hash of a feature key: two CRC-32s
of its UTF-8 bytes, the same in every process. ``current()`` gives the
memos in use (``KeyCache``): hashes of body words, of keys by prefix, of
header fields' tokens and whole short values (``Field``), of whole HTML
tags and of whole URLs. A memo computes what it lacks and keeps it; all
together keep about ``CACHE_MAX`` hashes, and past that the cache starts
over (a memo a caller still holds goes on working, unshared). Memos change
how often a hash is computed, never its value; nothing here raises for
any text.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable
from typing import TypeVar

# A header token: a word as in the body (features._WORD, with "'" and "+"
# inside left out), "$" allowed in front.
_HEADER_WORD = re.compile(r"[$]?\w+(?:[.@-]\w+)*[!%]?")
# _HEADER_WORD as run (see features._WORD_FAST): the same matches, faster;
# _HEADER_WORD itself is kept for text with a "$".
_HEADER_WORD_FAST = r"\w\w*+(?:[.@-]\w++)*+[!%]?"
_HEADER_WORD_STR = re.compile(_HEADER_WORD_FAST)
_HEADER_WORD_ASCII = re.compile(_HEADER_WORD_FAST, re.ASCII)
_TAG = re.compile(r"<(/?[a-z][a-z0-9]{0,15})([^>]{0,300})")
_ATTR = re.compile(r"([a-z-]{1,20})\s*=")  # as _attr_names finds them
_ATTR_CHARS = "abcdefghijklmnopqrstuvwxyz-"
_PATH_WORD = re.compile(r"[A-Za-z0-9]{2,30}")
# Fields whose values carry no signal or only noise unique to each message.
_SKIP_VALUES = frozenset({"date", "content-length", "lines", "status", "x-uid", "x-status"})
CACHE_MAX = 500_000
# Header values up to this long have their keys memoised whole (many recur:
# From, To, Content-Type, List-*...), but not those of fields whose values
# differ in every message (nor long ones: mostly Received, unique too).
_VALUE_MEMO_MAX = 200
_UNIQUE_VALUES = frozenset({"message-id", "received", "references", "in-reply-to"})

K = TypeVar("K")
V = TypeVar("V")


def key_hash(key: str | bytes) -> int:
    """The 64-bit hash of a feature key (bytes: its UTF-8 encoding)."""
    data = key if isinstance(key, bytes) else key.encode("utf-8", "surrogatepass")
    return zlib.crc32(data) | (zlib.crc32(data, 0x5BD1E995) << 32)


class Memo(dict[K, V]):
    """``compute(key)`` by key: a missing key is computed and kept.

    All memos together keep about ``CACHE_MAX`` hashes (a list of hashes
    counts by its length, a key by every 32 characters); past that the
    cache starts over, and memos still
    in use go on working, just no longer shared.
    """

    __slots__ = ("compute",)

    def __init__(self, compute: Callable[[K], V]) -> None:
        super().__init__()
        self.compute = compute

    def __missing__(self, key: K) -> V:
        value = self[key] = self.compute(key)
        weight = len(value) + 1 if isinstance(value, list) else 1
        # A long key (a word can be thousands of characters) counts more.
        _cache.count += weight + len(key) // 32  # type: ignore[arg-type]
        if _cache.count > CACHE_MAX:
            _start_over()
        return value


class KeyCache:
    """The per-process memos: hashes of words (as str or as UTF-8 bytes)
    and of keys by prefix (``"from:"``: ``"gmail"``), the hashes of whole
    HTML tags and of whole URLs, and header fields by name."""

    def __init__(self) -> None:
        self.count = 0
        self.words: Memo[str | bytes, int] = Memo(key_hash)
        self.prefixes: dict[str, Memo[str, int]] = {}
        self.tags: Memo[str, list[int]] = Memo(_tag_hashes)
        self.urls: Memo[str, list[int]] = Memo(_url_hashes)
        self.fields: Memo[str, Field] = Memo(Field)

    def prefixed(self, prefix: str) -> Memo[str, int]:
        """The memo of ``key -> key_hash(prefix + key)``."""
        memo = self.prefixes.get(prefix)
        if memo is None:
            memo = self.prefixes[prefix] = Memo(lambda key: key_hash(prefix + key))
        return memo


class Field:
    """A header field name (as written) and what its keys need: the name in
    lower case and the hash of its key, whether its values are skipped or
    it is a Received field; the memos of its token and domain keys, and of
    the keys of whole (short) values by ``max_header_words``."""

    __slots__ = (
        "domains",
        "name",
        "name_hash",
        "received",
        "skipped",
        "tokens",
        "unique",
        "values",
    )

    def __init__(self, written: str) -> None:
        name = written.lower()
        self.name = name
        self.name_hash = _cache.prefixed("hn:")[name]
        self.skipped = name in _SKIP_VALUES or name.startswith("x-spam")
        self.received = name == "received"
        self.tokens = _cache.prefixed(name + ":")
        self.domains = _cache.prefixed(name + ":@")
        self.unique = name in _UNIQUE_VALUES or "date" in name
        self.values: dict[int, Memo[str, list[int]]] = {}

    def value_hashes(self, value: str, limit: int) -> list[int]:
        """The hashes of the keys of ``value``: its first ``limit`` tokens
        and the domains of those with an "@"."""
        if self.unique or len(value) > _VALUE_MEMO_MAX:
            return self.compute(value, limit)
        memo = self.values.get(limit)
        if memo is None:
            memo = self.values[limit] = Memo(lambda v: self.compute(v, limit))
        return memo[value]

    def compute(self, value: str, limit: int) -> list[int]:
        """``value_hashes`` without the memo."""
        value = value.lower()
        if "$" in value:
            pattern = _HEADER_WORD
        else:
            pattern = _HEADER_WORD_ASCII if value.isascii() else _HEADER_WORD_STR
        tokens = pattern.findall(value)[:limit]
        hashes = list(map(self.tokens.__getitem__, tokens))
        if "@" in value:
            for token in tokens:
                if "@" in token:
                    hashes.append(self.domains[token.rpartition("@")[2]])
        return hashes


def _url_hashes(url: str) -> list[int]:
    """The key hashes of one URL: its host, its parent domains of two and
    three labels, "u:ip" when the last label is a number, and its first ten
    path words in lower case."""
    host, _, path = url.partition("://")[2].partition("/")
    labels = host.split(".")
    keys = ["uh:" + host]
    for depth in range(2, min(len(labels), 4)):
        keys.append("ud:" + ".".join(labels[-depth:]))
    if labels[-1].isdigit():
        keys.append("u:ip")
    for word in _PATH_WORD.findall(path)[:10]:
        keys.append("up:" + word.lower())
    return [key_hash(key) for key in keys]


def _tag_hashes(tag: str) -> list[int]:
    """The key hashes of one whole HTML tag: its name and, under the name,
    its first six attribute names."""
    name, attrs = _TAG.fullmatch(tag).groups()  # type: ignore[union-attr]
    keys = ["tag:" + name] + [f"ta:{name}:{attr}" for attr in _attr_names(attrs)]
    return [key_hash(key) for key in keys]


def _attr_names(attrs: str, limit: int = 6) -> list[str]:
    """``_ATTR.findall(attrs)[:limit]`` without the regex, which backtracks
    at every letter. Each "=" ends a stretch of ``attrs``; a name matches
    there if the stretch, white space aside, ends in ``[a-z-]``: the last 20
    of those characters."""
    names: list[str] = []
    for stretch in attrs.split("=")[:-1]:
        stretch = stretch.rstrip()
        size = len(stretch) - len(stretch.rstrip(_ATTR_CHARS))
        if size:
            names.append(stretch[-min(size, 20) :])
            if len(names) == limit:
                break
    return names


_cache = KeyCache()


def _start_over() -> None:
    global _cache
    _cache = KeyCache()


def current() -> KeyCache:
    """The memos in use now (a new set after the cache starts over)."""
    return _cache
