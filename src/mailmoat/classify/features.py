"""Message -> sorted distinct feature indices in a hashed space of 2**bits.

Contract: ``extract(message, config)`` returns a 1-d ``uint32`` numpy array
of distinct indices below ``2**config.hash_bits``; the same message and
config give the same array in every process (CRC-32 hashing, no Python
``hash``), so a model built on one host scores the same on another. It never
raises for any ``ParsedMessage``.

Feature families, each hashed under its own prefix so they do not mix:

* body words (subject, plain text, text of the HTML), lower-cased, and
  orthogonal sparse bigrams: each word paired with each of the next
  ``osb_window`` words, the pair tagged with its distance;
* header tokens prefixed by the field name (``from:gmail``), the names of
  the fields present, and the field order of the first few;
* URL hosts, their parent domains and path words; HTML tag and attribute
  names; attachment types and extensions; MIME part types; charsets;
  parser defects; a few bucketed sizes and counts.
"""

from __future__ import annotations

import math
import re
import zlib
from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt

from mailmoat.message import ParsedMessage

IndexArray = npt.NDArray[np.uint32]

# A word: letters/digits with inner punctuation (e-mail, 3.5, don't, a-b)
# and "!" or "%" behind. (A currency sign in front would make the regex
# try every position and cost a third more; the byte 4-grams see "$1".)
_WORD = re.compile(r"\w+(?:[.'@+-]\w+)*[!%]?")
_HEADER_WORD = re.compile(r"[$]?\w+(?:[.@-]\w+)*[!%]?")
_TAG = re.compile(r"<(/?[a-z][a-z0-9]{0,15})([^>]{0,300})")
_ATTR = re.compile(r"([a-z-]{1,20})\s*=")
_PATH_WORD = re.compile(r"[A-Za-z0-9]{2,30}")
# Fields whose values carry no signal or only noise unique to each message.
_SKIP_VALUES = frozenset({"date", "content-length", "lines", "status", "x-uid", "x-status"})
_M1 = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xC2B2AE3D27D4EB4F)
_DIST = [np.uint64(d) for d in range(64)]
_CACHE_MAX = 500_000
_cache: dict[str, int] = {}


@dataclass(frozen=True)
class FeatureConfig:
    """How messages are turned into features; stored inside each model."""

    hash_bits: int = 22
    osb_window: int = 4
    max_body_words: int = 1500
    max_header_words: int = 20
    # Received fields tokenised: the nearest hops (older ones are forgeable
    # and cost time).
    max_received: int = 3
    max_urls: int = 50
    max_tags: int = 400
    # Byte 4-grams over the first this many bytes of the raw message.
    ngram_bytes: int = 3000

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> FeatureConfig:
        known = {k: int(v) for k, v in data.items() if k in cls.__dataclass_fields__}  # type: ignore[call-overload]
        return cls(**known)


def extract(message: ParsedMessage, config: FeatureConfig) -> IndexArray:
    """The distinct feature indices of ``message`` (sorted ``uint32``)."""
    mask = np.uint64((1 << config.hash_bits) - 1)
    keys: list[str] = []
    _header_keys(message, config, keys)
    _content_keys(message, config, keys)
    text = f"{message.subject}\n{message.text}\n{message.html_text}"
    words = _WORD.findall(text[: config.max_body_words * 12].lower())[: config.max_body_words]
    hashes = _hashes(keys + words)
    word_hashes = hashes[len(keys) :]
    parts = [hashes]
    for distance in range(1, min(config.osb_window + 1, len(words))):
        parts.append(word_hashes[:-distance] * _M1 + word_hashes[distance:] * _M2 + _DIST[distance])
    if config.ngram_bytes:
        # CRLF (SMTP) and LF (files) copies of a message give the same grams.
        head = message.raw[: config.ngram_bytes * 2].replace(b"\r\n", b"\n")
        parts.append(_byte_ngrams(head[: config.ngram_bytes]))
    merged = np.concatenate(parts)
    merged ^= merged >> np.uint64(29)
    indices = (merged & mask).astype(np.uint32)
    # Sort-based dedup: numpy's hash-based unique is slower at these sizes.
    indices.sort()
    keep = np.empty(len(indices), dtype=bool)
    keep[:1] = True
    np.not_equal(indices[1:], indices[:-1], out=keep[1:])
    indices = indices[keep]
    return indices


def _byte_ngrams(data: bytes) -> npt.NDArray[np.uint64]:
    """Overlapping 4-byte windows as 32-bit integers, spread to 64 bits."""
    if len(data) < 4:
        return np.zeros(0, dtype=np.uint64)
    b = np.frombuffer(data, dtype=np.uint8).astype(np.uint64)
    grams = (
        (b[:-3] << np.uint64(24)) | (b[1:-2] << np.uint64(16)) | (b[2:-1] << np.uint64(8)) | b[3:]
    )
    spread: npt.NDArray[np.uint64] = (grams + np.uint64(0x51ED27)) * _M2
    return spread


def _hashes(keys: list[str]) -> npt.NDArray[np.uint64]:
    """64-bit hashes of ``keys``; a shared cache makes repeats a dict lookup."""
    missing = set(keys).difference(_cache)
    if missing:
        if len(_cache) + len(missing) > _CACHE_MAX:
            _cache.clear()
            missing = set(keys)
        for key in missing:
            data = key.encode("utf-8", "surrogatepass")
            _cache[key] = zlib.crc32(data) | (zlib.crc32(data, 0x5BD1E995) << 32)
    return np.array(list(map(_cache.__getitem__, keys)), dtype=np.uint64)


def _header_keys(message: ParsedMessage, config: FeatureConfig, keys: list[str]) -> None:
    names = []
    limit = config.max_header_words
    received = 0
    for name, value in message.headers:
        field = name.lower()
        names.append(field)
        keys.append("hn:" + field)
        if field in _SKIP_VALUES or field.startswith("x-spam"):
            continue
        if field == "received":
            received += 1
            if received > config.max_received:
                continue
        prefix = field + ":"
        tokens = _HEADER_WORD.findall(value.lower())[:limit]
        keys.extend([prefix + token for token in tokens])
        if "@" in value:
            keys.extend([prefix + "@" + t.rpartition("@")[2] for t in tokens if "@" in t])
    keys.append("ho:" + ",".join(names[:6]))
    keys.append("hcount:" + str(_bucket(len(names))))


def _content_keys(message: ParsedMessage, config: FeatureConfig, keys: list[str]) -> None:
    for url in message.urls[: config.max_urls]:
        host, _, path = url.partition("://")[2].partition("/")
        labels = host.split(".")
        keys.append("uh:" + host)
        for depth in range(2, min(len(labels), 4)):
            keys.append("ud:" + ".".join(labels[-depth:]))
        if labels[-1].isdigit():
            keys.append("u:ip")
        for word in _PATH_WORD.findall(path)[:10]:
            keys.append("up:" + word.lower())
    keys.append("urls:" + str(_bucket(len(message.urls))))
    if message.html:
        # Distinct (tag, attributes) pairs only: HTML spam repeats its markup.
        pairs = dict.fromkeys(_TAG.findall(message.html.lower()))
        for tag, attrs in list(pairs)[: config.max_tags]:
            keys.append("tag:" + tag)
            keys.extend([f"ta:{tag}:{attr}" for attr in _ATTR.findall(attrs)[:6]])
        ratio = len(message.html_text) / max(len(message.html), 1)
        keys.append(f"hratio:{int(ratio * 10)}")
        keys.append("html:" + ("only" if not message.text else "alt"))
    for attachment in message.attachments:
        keys.append("att:" + attachment.content_type)
        ext = attachment.filename.rpartition(".")[2].lower()[:8] if attachment.filename else "-"
        keys.append("ext:" + ext)
    for part_type in message.part_types[:20]:
        keys.append("pt:" + part_type)
    for charset in message.charsets[:10]:
        keys.append("cs:" + charset)
    for defect in message.defects[:10]:
        keys.append("df:" + defect.partition(":")[0])
    keys.append("len:" + str(_bucket(len(message.raw))))
    keys.append("parts:" + str(_bucket(message.parts_count)))


def _bucket(value: int) -> int:
    """Logarithmic bucket: 0, 1, 2-3, 4-7, ... as small integers."""
    return 0 if value <= 0 else 1 + int(math.log2(value))
