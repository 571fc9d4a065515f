"""Bulk detector (data stage): the same campaign seen from many senders.

Contract: computes a fuzzy fingerprint of the body and counts, per
fingerprint band in the store, the distinct sending networks (client /24 for
IPv4, /64 for IPv6) that sent it within ``bulk.window`` seconds. Symbols:
``BULK_LOW`` (0.5), ``BULK_MEDIUM`` (1.5), ``BULK_HIGH`` (3.0) once that
count reaches ``bulk.low`` / ``medium`` / ``high``; the detail says how many.
Repeats from the same network are not counted: one newsletter server is not
a botnet campaign.

Fingerprint: the text (plain, else rendered HTML) is normalised so that
per-recipient variations vanish: lower case, URLs, addresses and numbers
replaced by placeholders, punctuation dropped. Word 3-shingles are hashed
(CRC-32, stable across processes and gateways) into ``BINS`` bins keeping each
bin's minimum (one-permutation MinHash); ``BANDS`` bands of ``ROWS`` bins are
hashed into band keys. Two messages whose shingle sets overlap by 80% share
at least one band with probability ~0.9, unrelated ones practically never.
The message's count is the highest count of its bands. Bodies with fewer than
``bulk.min_words`` words are not fingerprinted.

Store cost (see ``BulkCheck._counts``): one batched read for all bands
(first network, counter, this network's marker);
one batched write for the bands nobody sent before and this network's
markers where another network came first; one batched counter write for
the bands this network is new to; nothing more for a repeat. A network's
count per band is kept in the process for ``bulk.cache_seconds``: its
repeats within that time cost no store operation at all.

Failure mode: a store failure is logged and gives no evidence (a hint is not
worth a tempfail); no store configured: not built.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import re
import time
import zlib
from array import array
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from mailmoat.checks.base import Check, Services
from mailmoat.checks.spec import CheckSpec, SymbolSpec
from mailmoat.config import BulkConfig
from mailmoat.core.symbols import Evidence, Stage
from mailmoat.core.transaction import Transaction
from mailmoat.store.base import StoreError

log = logging.getLogger("mailmoat.checks.bulk")

BINS = 20
ROWS = 4
BANDS = BINS // ROWS
MAX_WORDS = 600
_EMPTY = 0xFFFFFFFF
_PAD = (0, 0)
_BINS = np.uint64(BINS)
_CRC_MEMO_MAX = 100_000
_CRC_MEMO_WORD = 40
_RECENT_MAX = 50_000
_SPREAD_A = np.uint64(0x9E3779B1)
_SPREAD_B = np.uint64(0x85EBCA77)
_LOW_32 = np.uint64(0xFFFFFFFF)
# array() type code of a C unsigned 64-bit integer (from a list of ints,
# array() is quicker than numpy).
_U64 = "L" if array("L").itemsize == 8 else "Q"

_URL = re.compile(r"(?:https?|ftp)://\S+|www\.\S+", re.I)
# On lower-case ASCII text ignoring case changes nothing but costs a lot.
_ASCII_URL = re.compile(r"(?:https?|ftp)://\S+|www\.\S+")
# A match takes a whole run of non-space characters (one with an "@" after
# its first character and before its last): tried only where runs start,
# the same matches as r"\S+@\S+" without retrying inside each run.
_EMAIL = re.compile(r"(?<!\S)\S+@\S+")
_NUMBER = re.compile(r"\d+(?:[.,:/-]\d+)*")
_WORD = re.compile(r"\w+")
# _NUMBER, or a run of the word characters that are not digits, on lower-case ASCII.
_ASCII_NUMBER_OR_WORD = re.compile(r"[0-9]+(?:[.,:/-][0-9]+)*|[a-z_]+")

SPEC = CheckSpec(
    name="bulk",
    stages=(Stage.DATA,),
    summary="The same content seen from many sending networks (fuzzy fingerprint).",
    symbols=(
        SymbolSpec(
            "BULK_LOW", 0.5, "The same content came from bulk.low or more networks.", "content"
        ),
        SymbolSpec(
            "BULK_MEDIUM",
            1.5,
            "The same content came from bulk.medium or more networks.",
            "content",
        ),
        SymbolSpec(
            "BULK_HIGH", 3.0, "The same content came from bulk.high or more networks.", "content"
        ),
    ),
)


def normalised_words(text: str) -> list[str]:
    """At most ``MAX_WORDS`` normalised words of the first ``10 * MAX_WORDS``
    characters: lower case, URLs, addresses and numbers as placeholders.

    Lower-casing comes first (it never turns a non-space into a space, so every
    match below covers the same characters); a substitution whose literal
    cannot occur is skipped. Same words as substituting in the original order.
    ASCII text (most mail) takes one pass for numbers and words together: no
    pattern here matches across white space and, with no digit left after
    the number substitution, the words are the runs of non-digit word
    characters between the numbers.
    """
    text = text[: MAX_WORDS * 10].lower()
    if text.isascii():
        if "://" in text or "www." in text:
            text = _ASCII_URL.sub(" zurlz ", text)
        if "@" in text:
            text = _EMAIL.sub(" zemailz ", text)
        # A token that sorts before ":" starts with a digit: a number ("_"
        # and the letters sort after ":", the digits before it).
        tokens = _ASCII_NUMBER_OR_WORD.findall(text)
        return [t if t > ":" else "znumz" for t in tokens if t != "_"][:MAX_WORDS]
    if "://" in text or "www." in text:
        text = _URL.sub(" zurlz ", text)
    if "@" in text:
        text = _EMAIL.sub(" zemailz ", text)
    text = _NUMBER.sub(" znumz ", text)
    words = _WORD.findall(text)  # the same as splitting at runs of non-word characters
    return [w for w in words if len(w) > 1 or w.isalpha()][:MAX_WORDS]


class _WordCrcs(dict[str, int]):
    """CRC-32 of each word's UTF-8, memoised: a site's vocabulary repeats
    from message to message. Bounded: starts over at ``_CRC_MEMO_MAX``
    words, and words longer than ``_CRC_MEMO_WORD`` (rare, and an easy way
    to fill memory) are not kept."""

    def __missing__(self, word: str) -> int:
        crc = zlib.crc32(word.encode("utf-8", "replace"))
        if len(word) <= _CRC_MEMO_WORD:
            if len(self) >= _CRC_MEMO_MAX:
                self.clear()
            self[word] = crc
        return crc


_word_crcs = _WordCrcs()


def fingerprint(words: list[str]) -> list[str]:
    """``BANDS`` band keys (hex) for the word list; [] when it is empty."""
    if not words:
        return []
    count = len(words)
    # The words' hashes and two zeros: with fewer than three words, one
    # shingle padded with zeros.
    crcs = list(map(_word_crcs.__getitem__, words))
    crcs += _PAD
    hashes = np.frombuffer(array(_U64, crcs), np.uint64)
    # A 3-word shingle's hash from its words' hashes, bits spread before
    # binning. In uint64 the products wrap, which leaves the low 32 bits that
    # are kept exact.
    values = hashes[:-2] * _SPREAD_A
    values ^= hashes[1:-1] * _SPREAD_B
    values ^= hashes[2:]
    values &= _LOW_32
    values = values[: max(1, count - 2)]
    mins = np.full(BINS, _EMPTY, np.uint64)
    np.minimum.at(mins, (values % _BINS).astype(np.intp), values)  # each bin's minimum
    rows = mins.tolist()
    keys = []
    for band in range(BANDS):
        raw = f"{band}:" + ",".join(map(str, rows[band * ROWS : (band + 1) * ROWS]))
        keys.append(hashlib.blake2b(raw.encode(), digest_size=8).hexdigest())
    return keys


def sender_network(ip: str) -> str:
    head, dot, last = ip.rpartition(".")
    if dot and last.isdigit() and head.count(".") == 2 and ":" not in head:
        return f"{head}.0"  # IPv4 /24, the common case, without ipaddress
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip or "unknown"
    prefix = 24 if address.version == 4 else 64
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)


class BulkCheck(Check):
    name: ClassVar[str] = "bulk"
    stage: ClassVar[str] = Stage.DATA

    def __init__(
        self, store: Any, config: BulkConfig, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.store = store
        self.config = config
        self.clock = clock
        # (band, network) -> (until, count): counts this process read or made.
        self._recent: dict[tuple[str, str], tuple[float, int]] = {}

    async def run(self, tx: Transaction, evidence: Evidence) -> None:
        message = tx.message
        words = normalised_words(message.text or message.html_text)
        if len(words) < self.config.min_words:
            return
        bands = fingerprint(words)
        tx.bulk_fingerprint = tuple(bands)
        network = sender_network(tx.session.client_ip)
        try:
            counts = await self._recent_counts(bands, network)
        except StoreError as exc:
            log.warning("bulk: store failed, no evidence: %s", exc)
            return
        count = max(counts, default=0)
        for symbol, threshold in (
            ("BULK_HIGH", self.config.high),
            ("BULK_MEDIUM", self.config.medium),
            ("BULK_LOW", self.config.low),
        ):
            if threshold > 0 and count >= threshold:
                SPEC.add(evidence, symbol, f"{count} senders")
                break

    async def _recent_counts(self, bands: list[str], network: str) -> list[int]:
        """``_counts``, but a band's count for this network is reused for
        ``cache_seconds``: a network already counted adds nothing when it
        sends again, so its repeats (a campaign's, a newsletter's) need no
        store round trip; other networks' news shows that much later.

        At the end of a window the cache can also hide that the network's
        store keys expired: a repeat within ``cache_seconds`` after that
        counts as a repeat of the old window, and the network enters the
        new window with its next message that reaches the store. Windows
        are a day by default and counts a rough signal: not worth a store
        read per message to be exact there."""
        ttl = min(self.config.cache_seconds, self.config.window)
        if not ttl > 0:  # 0, negative or NaN: no cache
            return await self._counts(bands, network)
        now = self.clock()
        recent = self._recent
        hits = [recent.get((band, network)) for band in bands]
        missing = [band for band, hit in zip(bands, hits, strict=True) if not hit or hit[0] <= now]
        fresh: dict[str, int] = {}
        if missing:
            fresh = dict(zip(missing, await self._counts(missing, network), strict=True))
            if len(recent) >= _RECENT_MAX:
                for key in [key for key, (until, _) in recent.items() if until <= now]:
                    del recent[key]
                if len(recent) >= _RECENT_MAX // 2:  # mostly live: start over
                    recent.clear()
            for band, count in fresh.items():
                recent[band, network] = (now + ttl, count)
        return [
            fresh[band] if band in fresh else hit[1]  # type: ignore[index]
            for band, hit in zip(bands, hits, strict=True)
        ]

    async def _counts(self, bands: list[str], network: str) -> list[int]:
        """Per band, the distinct networks that sent it within the window,
        this one included.

        A network counts once per band. The first network of a band is
        remembered in ``bulk:f:<band>``; later networks are marked with
        ``bulk:s:<band>:<network>`` and counted in ``bulk:n:<band>``, which
        holds the networks *after* the first. Every key expires ``window``
        seconds after it was made.

        Batched: one read fetches every band's first network, counter and
        this network's marker; one write adds the first network of the bands
        nobody sent before (most mail is unique) together with this
        network's marker for the bands another network sent first; one more
        write counts the networks whose marker it made. A repeat from a
        known network needs only the read.
        """
        store, window, me = self.store, self.config.window, network.encode()
        firsts = [f"bulk:f:{band}" for band in bands]
        markers = [f"bulk:s:{band}:{network}" for band in bands]
        known = await store.get_many([*firsts, *(f"bulk:n:{band}" for band in bands), *markers])
        size = len(bands)
        first_of = dict(zip(bands, known[:size], strict=True))
        later = dict(zip(bands, known[size : 2 * size], strict=True))
        # The key each band needs added: its first network, or this
        # network's marker when another network sent it first.
        wanted: dict[str, str] = {}
        for band, first_key, marker, mark in zip(
            bands, firsts, markers, known[2 * size :], strict=True
        ):
            first = first_of[band]
            if first is None:
                wanted[band] = first_key
            elif first != me and mark is None:
                wanted[band] = marker
        added = frozenset[str]()
        if wanted:
            added = await store.add_many(dict.fromkeys(wanted.values(), me), window)
        marked = [band for band, key in wanted.items() if key in added and first_of[band]]
        counted: dict[str, int] = {}
        if marked:
            news = await store.incr_many([f"bulk:n:{band}" for band in marked], 1, window)
            counted = dict(zip(marked, news, strict=True))
        counts = []
        for band in bands:
            key = wanted.get(band)
            if band in counted:  # a network after the first, new to this band
                counts.append(1 + counted[band])
            elif key is not None and first_of[band] is None:
                if key in added:  # the band's first network
                    counts.append(1)
                else:  # another message made it just now
                    counts.append(await self._counted_late(band, network))
            else:  # this network is the first or is already counted
                value = later[band]
                counts.append(1 + (int(value) if value else 0))
        return counts

    async def _counted_late(self, band: str, network: str) -> int:
        """A band whose first network another message wrote between the read
        and the write: counted one key at a time."""
        store, window, me = self.store, self.config.window, network.encode()
        first = await store.get(f"bulk:f:{band}")
        if first != me and await store.add(f"bulk:s:{band}:{network}", me, window):
            return 1 + int(await store.incr(f"bulk:n:{band}", 1, window))
        value = await store.get(f"bulk:n:{band}")
        return 1 + (int(value) if value else 0)


def build(services: Services) -> list[Check]:
    if services.store is None:
        log.info("bulk: no store configured, check disabled")
        return []
    return [BulkCheck(services.store, services.config.bulk)]
