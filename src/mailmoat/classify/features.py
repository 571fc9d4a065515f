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
* header features by ``config.feature_set``: set 2 (the default) tokenises
  only the fields the sender writes (``header_shape.CONTENT_FIELDS``,
  ``from:gmail``) and adds the shape keys of ``header_shape`` (what carries
  across sites and years); set 1 (models saved before set 2) tokenised every
  field but the nearest Received hops, the names of the fields present and
  the order of the first few;
* byte 4-grams over the start of the body (set 2) or of the raw message,
  header included (set 1);
* URL hosts, their parent domains and path words; HTML tag and attribute
  names; attachment types and extensions; MIME part types; charsets;
  parser defects; a few bucketed sizes and counts.

Hashing: a feature key is a string (``"from:gmail"``; a body word is its own
key) whose 64-bit hash ``h`` is two CRC-32s of its UTF-8 bytes; a bigram
mixes the hashes of its two words and their distance, a byte 4-gram its
four bytes. The index is ``(h ^ h >> 29) & (2**hash_bits - 1)``.

The cost is kept down by the bounded per-process memos of ``key_memo``:
hashes of words, of keys by prefix (so a header token needs no key string
built), of whole short header values, whole HTML tags and whole URLs,
which recur across messages; and by tokenising body text mostly with
``bytes.split`` rather than the regex (``_word_hashes``). None of it
changes the features.
"""

from __future__ import annotations

import math
import re
from array import array
from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt

from mailmoat.classify.header_shape import CONTENT_FIELDS, header_shape_keys
from mailmoat.classify.key_memo import current
from mailmoat.message import ParsedMessage

IndexArray = npt.NDArray[np.uint32]

# A word: letters/digits with inner punctuation (e-mail, 3.5, don't, a-b)
# and "!" or "%" behind. (A currency sign in front would make the regex
# try every position and cost a third more; the byte 4-grams see "$1".)
_WORD = re.compile(r"\w+(?:[.'@+-]\w+)*[!%]?")
# The patterns as run: they match the same, faster. Written to start with a
# plain \w, they let the regex engine skip to the places a match can start;
# possessive, they keep no backtracking state (which is never needed: the
# optional tail can always match empty).
_WORD_FAST = r"\w\w*+(?:[.'@+-]\w++)*+[!%]?"
_WORD_STR = re.compile(_WORD_FAST)
_WORD_BYTES = re.compile(_WORD_FAST.encode())
# For _word_hashes: ASCII to lower case with the characters no word holds
# turned into spaces (other bytes kept); characters that never start a word
# and those that never end one.
_IN_WORDS = b"0123456789abcdefghijklmnopqrstuvwxyz_.'@+-!%"
_LOWER_WORD_BYTES = bytes(
    c if c in _IN_WORDS or c >= 0x80 else c + 32 if 65 <= c <= 90 else 0x20  # A-Z: a-z
    for c in range(256)
)
_NOT_FIRST = ".'@+-!%"
_NOT_LAST = ".'@+-"
_NOT_FIRST_BYTES = _NOT_FIRST.encode()
_NOT_LAST_BYTES = _NOT_LAST.encode()
_PUNCTUATION = tuple(bytes([c]) for c in b".-'@+!%")
# key_memo's tag pattern without its groups: the same matches as whole
# strings, found faster.
_WHOLE_TAG = re.compile(r"</?[a-z][a-z0-9]{0,15}[^>]{0,300}")
_M1 = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xC2B2AE3D27D4EB4F)
_NGRAM_SEED = np.uint64(0x51ED27)
_MIX_SHIFT = np.uint64(29)
# array() type code of a C unsigned 64-bit integer ("L" converts faster).
_U64 = "L" if array("L").itemsize == 8 else "Q"


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
    # Byte 4-grams over the first this many bytes of the raw message (set
    # 1) or of the body (set 2).
    ngram_bytes: int = 3000
    # 1: every header field tokenised, its names and order, grams over the
    # raw head (models made before set 2 existed); 2: header features that
    # carry across sites (``header_shape``), grams over the body.
    feature_set: int = 2

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> FeatureConfig:
        known = {k: int(v) for k, v in data.items() if k in cls.__dataclass_fields__}  # type: ignore[call-overload]
        # A model saved before feature sets existed was made with set 1.
        known.setdefault("feature_set", 1)
        return cls(**known)


def extract(message: ParsedMessage, config: FeatureConfig) -> IndexArray:
    """The distinct feature indices of ``message`` (sorted ``uint32``)."""
    hashes: list[int] = []
    portable = config.feature_set >= 2
    if portable:
        _portable_header_keys(message, config, hashes)
    else:
        _header_keys(message, config, hashes)
    _content_keys(message, config, hashes)
    n_keys = len(hashes)
    text = f"{message.subject}\n{message.text}\n{message.html_text}"
    _word_hashes(text[: config.max_body_words * 12], config.max_body_words, hashes)
    # All the 64-bit hashes in one array: keys and words, word pairs (the
    # hashes of the two words mixed with their distance), byte 4-grams.
    end = len(hashes)
    n_pairs, left, right, distance = _pairs(end - n_keys, config.osb_window)
    if not portable:
        head = _ngram_head(message.raw, config.ngram_bytes)
    else:
        head = _ngram_head(message.raw[message.body_offset :], config.ngram_bytes)
    n_grams = max(len(head) - 3, 0)
    merged = np.empty(end + n_pairs + n_grams, np.uint64)
    merged[:end] = array(_U64, hashes)
    if n_pairs:
        words = merged[n_keys:end]
        pairs = merged[end : end + n_pairs]
        np.take(words * _M1, left[:n_pairs], out=pairs)
        pairs += (words * _M2)[right[:n_pairs]]
        pairs += distance[:n_pairs]
    if n_grams:
        # Overlapping big-endian 4-byte windows: b0<<24 | b1<<16 | b2<<8 | b3.
        windows = np.ndarray((n_grams,), dtype=">u4", buffer=head, strides=(1,))
        grams = merged[end + n_pairs :]
        np.add(windows, _NGRAM_SEED, out=grams, dtype=np.uint64)
        grams *= _M2
    merged ^= merged >> _MIX_SHIFT
    mask = (1 << config.hash_bits) - 1
    indices = np.bitwise_and(merged, mask, out=np.empty(len(merged), np.uint32), casting="unsafe")
    # Sort-based dedup: numpy's hash-based unique is slower at these sizes.
    indices.sort()
    keep = np.empty(len(indices), dtype=bool)
    keep[:1] = True
    np.not_equal(indices[1:], indices[:-1], out=keep[1:])
    result: IndexArray = indices[keep]
    return result


_PairTable = tuple[list[int], npt.NDArray[np.intp], npt.NDArray[np.intp], npt.NDArray[np.uint64]]
_pair_tables: dict[int, _PairTable] = {}


def _pairs(
    n_words: int, window: int
) -> tuple[int, npt.NDArray[np.intp], npt.NDArray[np.intp], npt.NDArray[np.uint64]]:
    """The orthogonal sparse bigrams of ``n_words`` words: their number and,
    in their first that many entries, the positions of the left and right
    word and the distance between them.

    The pairs are listed by right word ``j`` = 1, 2, ... and then distance
    ``d`` = 1 ... ``min(window, j)``, so the pairs of any number of words
    are the start of one table per window size, grown as needed.
    """
    table = _pair_tables.get(window)
    if table is None or len(table[0]) < n_words:
        size = max(n_words, 2 * len(table[0]) if table else 256)
        per_word = np.minimum(np.arange(size), max(window, 0))  # pairs ending at word j
        right = np.repeat(np.arange(size), per_word)
        ends = np.cumsum(per_word)
        distance = np.arange(len(right)) - np.repeat(ends - per_word, per_word) + 1
        table = ends.tolist(), right - distance, right, distance.astype(np.uint64)
        _pair_tables[window] = table
    counts, left, right, distances = table
    return (counts[n_words - 1] if n_words else 0), left, right, distances


def _word_hashes(text: str, limit: int, out: list[int]) -> None:
    r"""Append the hashes of the first ``limit`` words (``_WORD``) of
    ``text.lower()``.

    Not one regex pass over all the text: the lower-cased text is encoded
    (UTF-8), the ASCII characters no word contains become spaces and the
    bytes split at ASCII white space (never in a word either) into chunks
    that each hold whole words. A chunk of ASCII letters and digits only
    (``isalnum``: ``\w`` but "_") is one word; only the few others go
    through ``_resplit``. A word's hash is that of its UTF-8 bytes, so an
    ASCII word hashes the same as bytes or as text.
    """
    if text.isascii():
        data = text.encode("ascii").translate(_LOWER_WORD_BYTES)
    else:
        data = text.lower().encode("utf-8", "surrogatepass").translate(_LOWER_WORD_BYTES)
    chunks = data.split()
    words: list[bytes] | list[bytes | str] = chunks
    # (In ASCII text without word punctuation each chunk is one word: "_"
    # is a word character, isalnum() aside.)
    if not data.isascii() or any(map(data.__contains__, _PUNCTUATION)):
        plain = list(map(bytes.isalnum, chunks))
        if False in plain:
            words = _resplit(chunks, plain)
    out += map(current().words.__getitem__, words[:limit])


def _resplit(chunks: list[bytes], plain: list[bool]) -> list[bytes | str]:
    r"""The words of ``chunks``: a plain chunk is one. An ASCII chunk that
    is not is stripped of characters that cannot begin (or end) a word
    there, which often leaves one plain word or none ("it.", "--"), and the
    rest goes through the regex. A chunk with other characters is decoded
    and split at Unicode white space, and each piece found the same way
    with the Unicode ``\w`` (its words are ``str``)."""
    words: list[bytes | str] = []
    start = 0
    for _ in range(plain.count(False)):
        other = plain.index(False, start)
        words += chunks[start:other]
        chunk = chunks[other]
        if chunk.isascii():
            chunk = chunk.lstrip(_NOT_FIRST_BYTES).rstrip(_NOT_LAST_BYTES)
            if chunk.isalnum():
                words.append(chunk)
            elif chunk:
                words += _WORD_BYTES.findall(chunk)
        else:
            for piece in chunk.decode("utf-8", "surrogatepass").split():
                if not piece.isalnum():
                    piece = piece.lstrip(_NOT_FIRST).rstrip(_NOT_LAST)
                    if not piece.isalnum():
                        if piece:
                            words += _WORD_STR.findall(piece)
                        continue
                words.append(piece)
        start = other + 1
    words += chunks[start:]
    return words


def _ngram_head(raw: bytes, size: int) -> bytes:
    """The first ``size`` bytes of ``raw`` with CRLF turned into LF, so that
    CRLF (SMTP) and LF (files) copies of a message give the same grams."""
    if not size:
        return b""
    head = raw[: size * 2]
    if b"\r" in head:
        # Dropping every CR is the same when each one starts a CRLF, and a
        # two-byte search costs more than a one-byte one.
        crs = len(head)
        head = head.replace(b"\r", b"")
        crs -= len(head)
        if crs != raw[: size * 2].count(b"\r\n"):
            head = raw[: size * 2].replace(b"\r\n", b"\n")
    return head[:size]


def _header_keys(message: ParsedMessage, config: FeatureConfig, out: list[int]) -> None:
    names = []
    fields = current().fields
    received = 0
    for name, value in message.headers:
        field = fields[name]
        names.append(field.name)
        out.append(field.name_hash)
        if field.skipped:
            continue
        if field.received:
            received += 1
            if received > config.max_received:
                continue
        out += field.value_hashes(value, config.max_header_words)
    keys = current().prefixed("")
    out.append(keys["ho:" + ",".join(names[:6])])
    out.append(keys["hcount:" + str(_bucket(len(names)))])


def _portable_header_keys(message: ParsedMessage, config: FeatureConfig, out: list[int]) -> None:
    """Set 2: the values of the fields in ``CONTENT_FIELDS`` tokenised and
    the shape keys of ``header_shape``; nothing from other fields."""
    fields = current().fields
    seen: set[str] = set()
    for name, value in message.headers:
        field = fields[name]
        if field.name in CONTENT_FIELDS and field.name not in seen:
            seen.add(field.name)
            out += field.value_hashes(value, config.max_header_words)
    keys = current().prefixed("")
    out += map(keys.__getitem__, header_shape_keys(message))


def _content_keys(message: ParsedMessage, config: FeatureConfig, out: list[int]) -> None:
    # A URL's keys by the whole URL: half the URLs of a mail stream recur.
    for url_hashes in map(current().urls.__getitem__, message.urls[: config.max_urls]):
        out += url_hashes
    keys = ["urls:" + str(_bucket(len(message.urls)))]
    if message.html:
        # Distinct tags (name and attributes) only: HTML spam repeats its
        # markup; and much of it recurs across messages (the memo).
        tags = dict.fromkeys(_WHOLE_TAG.findall(message.html.lower()))
        for tag_hashes in map(current().tags.__getitem__, list(tags)[: config.max_tags]):
            out += tag_hashes
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
    out += map(current().prefixed("").__getitem__, keys)


def _bucket(value: int) -> int:
    """Logarithmic bucket: 0, 1, 2-3, 4-7, ... as small integers."""
    return 0 if value <= 0 else 1 + int(math.log2(value))
