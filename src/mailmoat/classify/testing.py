"""Synthetic labelled mail for tests of the classifier and its users.

Contract: ``synthetic_corpus(n, seed)`` returns n (is_spam, raw bytes) pairs,
every third one spam, deterministic for a seed; the two classes differ in
vocabulary, sender and link, so a few dozen messages train a separating
model. Shipped (like httpx's testing helpers) for tests here and in users'
own suites; not used at run time.
"""

from __future__ import annotations

import random

SPAM_WORDS = [
    "viagra",
    "cheap",
    "pills",
    "offer",
    "free",
    "money",
    "winner",
    "click",
    "casino",
    "loan",
    "credit",
    "rich",
]
HAM_WORDS = [
    "meeting",
    "patch",
    "kernel",
    "review",
    "lunch",
    "report",
    "build",
    "release",
    "thanks",
    "agenda",
    "debian",
]
COMMON = [
    "the",
    "a",
    "to",
    "and",
    "of",
    "in",
    "for",
    "on",
    "with",
    "is",
    "it",
    "this",
    "that",
    "you",
    "we",
]


def synthetic_message(is_spam: bool, rng: random.Random, number: int = 0) -> bytes:
    topical = SPAM_WORDS if is_spam else HAM_WORDS
    words = [rng.choice(topical if rng.random() < 0.4 else COMMON) for _ in range(60)]
    sender = "promo@deals.example" if is_spam else "dev@lists.example.org"
    url = "http://buy.deals.example/now" if is_spam else "http://git.example.org/log"
    return (
        f"From: {sender}\nTo: user@example.com\nSubject: {' '.join(words[:5])}\n"
        f"Message-ID: <{number}@{sender.split('@')[1]}>\n\n{' '.join(words)}\n{url}\n"
    ).encode()


def synthetic_corpus(n: int, seed: int = 7) -> list[tuple[bool, bytes]]:
    rng = random.Random(seed)
    return [(i % 3 == 0, synthetic_message(i % 3 == 0, rng, i)) for i in range(n)]
