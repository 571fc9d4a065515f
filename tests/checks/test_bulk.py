"""Bulk detector: fingerprints survive per-recipient variation; counts per sender network."""

from __future__ import annotations

import asyncio
import random

import pytest

from authfakes import make_tx, names
from mailmoat.checks.bulk import BulkCheck, fingerprint, normalised_words, sender_network
from mailmoat.config import BulkConfig
from mailmoat.core.symbols import Evidence
from mailmoat.store.base import StoreError
from mailmoat.store.sqlite import SqliteStore

CAMPAIGN = """Dear {name},

Your account number {number} has been selected for our exclusive {product} offer.
Only this week you can save up to {pct} percent on every order you place with us.
Visit {url} to claim the discount before it expires on {date}, or reply to {email}.
Thousands of happy customers already trust our service and our fast delivery.
Kind regards, the customer team
"""

WORDS_TEXT = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron"
WORDS = WORDS_TEXT.split()


def variant(rng: random.Random) -> str:
    return CAMPAIGN.format(
        name=rng.choice(["John", "Maria Lopez", "Dr. Chen", "friend"]),
        number=rng.randrange(10**9),
        product="premium",
        pct=rng.randrange(10, 90),
        url=f"http://t{rng.randrange(10**6)}.example.com/?id={rng.randrange(10**9)}",
        date=f"{rng.randrange(1, 28)}.{rng.randrange(1, 12)}.2024",
        email=f"u{rng.randrange(10**6)}@example.net",
    )


def mail(body: str) -> bytes:
    return f"From: a@example.org\r\nSubject: offer\r\n\r\n{body}".replace("\n", "\r\n").encode()


def test_variants_share_bands_unrelated_do_not() -> None:
    rng = random.Random(7)
    base = set(fingerprint(normalised_words(variant(rng))))
    shared = [len(base & set(fingerprint(normalised_words(variant(rng))))) for _ in range(30)]
    assert min(shared) >= 1
    unrelated = [
        len(base & set(fingerprint([rng.choice(WORDS) for _ in range(80)]))) for _ in range(200)
    ]
    assert max(unrelated) == 0


def run_check(store: object, tx_ip: str, body: str, config: BulkConfig) -> dict[str, float]:
    evidence = Evidence()
    asyncio.run(BulkCheck(store, config).run(make_tx(mail(body), ip=tx_ip), evidence))
    return names(evidence)


def test_grades_by_distinct_sender_networks(tmp_path: object) -> None:
    store = SqliteStore(":memory:")
    config = BulkConfig(low=3, medium=6, high=10)
    rng = random.Random(3)
    seen = []
    for n in range(12):
        seen.append(run_check(store, f"198.51.{n}.7", variant(rng), config))
    assert seen[1] == {} and seen[2] == {"BULK_LOW": 0.5}
    assert seen[5] == {"BULK_MEDIUM": 1.5} and seen[11] == {"BULK_HIGH": 3.0}
    # The same network again does not count as another sender.
    again = [run_check(store, "198.51.0.99", variant(rng), BulkConfig(low=13)) for _ in range(3)]
    assert again == [{}, {}, {}]


def test_the_fingerprint_is_left_on_the_transaction_for_the_campaigns() -> None:
    body = variant(random.Random(5))
    tx = make_tx(mail(body))
    asyncio.run(BulkCheck(SqliteStore(":memory:"), BulkConfig()).run(tx, Evidence()))
    assert tx.bulk_fingerprint == tuple(fingerprint(normalised_words(body)))
    assert tx.bulk_fingerprint and tx.notes == {}


def test_short_bodies_are_not_fingerprinted() -> None:
    tx = make_tx(mail("thanks, see you"))
    asyncio.run(BulkCheck(SqliteStore(":memory:"), BulkConfig()).run(tx, Evidence()))
    assert tx.bulk_fingerprint == ()


class BrokenStore:
    async def get_many(self, *args: object) -> list[bytes | None]:
        raise StoreError("down")


def test_store_failure_is_no_evidence(caplog: pytest.LogCaptureFixture) -> None:
    assert run_check(BrokenStore(), "192.0.2.1", variant(random.Random(1)), BulkConfig()) == {}
    assert "bulk: store failed" in caplog.text


def test_sender_network() -> None:
    assert sender_network("192.0.2.77") == "192.0.2.0"
    assert sender_network("2001:db8:1:2:3::9") == "2001:db8:1:2::"
    assert sender_network("bogus") == "bogus"


def test_normalised_words_placeholders_and_case() -> None:
    text = "See WWW.Example.com or HTTP://x.y/z, mail Bob@Example.ORG on 12.50 at 10:30 a b x_y"
    assert normalised_words(text) == [
        *("see", "zurlz", "or", "zurlz", "mail", "zemailz", "on", "znumz", "at", "znumz"),
        *("a", "b", "x_y"),
    ]
    # No scheme, www. or @: nothing is taken for a URL or an address.
    assert normalised_words("mail at example dot com, ftp-server") == [
        *("mail", "at", "example", "dot", "com", "ftp", "server"),
    ]


class CountingStore:
    """A SqliteStore that records the name of every operation called on it."""

    def __init__(self) -> None:
        self.inner = SqliteStore(":memory:")
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> object:
        self.calls.append(name)
        return getattr(self.inner, name)


WRITES = {"add", "add_many", "incr", "set", "compare_and_set", "hincr", "hset"}


def test_store_writes_per_message_are_bounded() -> None:
    store = CountingStore()
    rng = random.Random(7)
    store.calls.clear()
    run_check(store, "198.51.0.7", variant(rng), BulkConfig())
    # A fingerprint nobody sent: one read and one write for all five bands.
    assert store.calls == ["get_many", "add_many"]
    store.calls.clear()
    run_check(store, "198.51.0.8", variant(rng), BulkConfig())  # same /24: one read only
    assert store.calls == ["get_many"]
    store.calls.clear()
    got = run_check(store, "198.51.1.7", variant(rng), BulkConfig(low=2))
    # A second network: its marker and the band's counter, for the bands it shares.
    writes = [c for c in store.calls if c in WRITES]
    assert 0 < len(writes) <= 10 and set(writes) <= {"add_many", "incr"}
    assert got == {"BULK_LOW": 0.5}


def test_repeats_from_a_counted_network_reuse_its_count_for_cache_seconds() -> None:
    store = CountingStore()
    now = [100.0]
    check = BulkCheck(store, BulkConfig(low=2, cache_seconds=1.0), clock=lambda: now[0])
    body = variant(random.Random(11))

    def send(ip: str) -> dict[str, float]:
        evidence = Evidence()
        asyncio.run(check.run(make_tx(mail(body), ip=ip), evidence))
        return names(evidence)

    assert send("198.51.0.7") == {}
    assert store.calls == ["get_many", "add_many"]
    store.calls.clear()
    now[0] += 0.5
    assert send("198.51.0.9") == {}  # same /24 within a second: no store operation
    assert store.calls == []
    # Another network is not in the cache: it is counted in the store, and
    # reaches the threshold at once.
    assert send("203.0.113.5") == {"BULK_LOW": 0.5}
    assert "get_many" in store.calls and "incr" in store.calls
    # The first network's cached count lags by at most cache_seconds.
    store.calls.clear()
    assert send("198.51.0.7") == {}
    assert store.calls == []
    now[0] += 1.0
    assert send("198.51.0.7") == {"BULK_LOW": 0.5}
    assert store.calls == ["get_many"]


def test_cache_seconds_zero_reads_the_store_every_time() -> None:
    store = CountingStore()
    check = BulkCheck(store, BulkConfig(cache_seconds=0))
    body = variant(random.Random(5))
    for _ in range(3):
        asyncio.run(check.run(make_tx(mail(body), ip="198.51.0.7"), Evidence()))
    assert store.calls == ["get_many", "add_many", "get_many", "get_many"]


def test_cache_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("mailmoat.checks.bulk._RECENT_MAX", 12)
    now = [0.0]
    check = BulkCheck(SqliteStore(":memory:"), BulkConfig(), clock=lambda: now[0])
    rng = random.Random(9)
    for n in range(10):
        now[0] += 0.1
        asyncio.run(check.run(make_tx(mail(variant(rng)), ip=f"198.51.{n}.7"), Evidence()))
        assert len(check._recent) <= 12 + 5


def test_long_words_are_hashed_but_not_memoised() -> None:
    from mailmoat.checks import bulk

    long_word = "x" * 500
    keys = fingerprint([long_word] * 20)
    assert keys == fingerprint([long_word] * 20) and len(keys) == 5
    assert long_word not in bulk._word_crcs
    fingerprint(["short"] * 20)
    assert "short" in bulk._word_crcs
