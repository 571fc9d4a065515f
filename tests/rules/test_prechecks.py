"""The known rules' conditions (back-references, lines): never False where the regex matches."""

from __future__ import annotations

import random
import re

import pytest

from mailmoat.rules import backrefs, prechecks

FLAGS = re.IGNORECASE | re.MULTILINE | re.DOTALL | re.ASCII
SHAPES = sorted(backrefs._SHAPES)

ADDRESSES = [
    "joe@example.com", "Joe@Example.COM", "joe12@example.com", "joe1234@example.com",
    "1234@example.com", "x<y@brand.net", "mary.smith@brand.net", "brand@mail.brand.net",
    "bob@ex", "a@b.c", "ann@brand", "<joe@example.com>", "joe", "@example.com",
]  # fmt: skip
WORDS = ["hello", "brand", "JOE", "joe12", "example", '"brand', "re:", "<", ">", ",", ";", "@"]


def _value(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.randint(0, 4)):
        parts.append(rng.choice([*ADDRESSES, *WORDS, "Joe Bloggs", " ", "\t", "\n ", "<", ""]))
    return rng.choice(["", " ", "  ", "\n "]).join(parts)


def _line(rng: random.Random) -> str:
    address = rng.choice(ADDRESSES)
    template = rng.choice(
        [
            "From: {v}", "From: {a}", "From: {a} <{b}>", "From: Name <{a}>", "From:\n  {a}",
            "From:{v}<{a}>",
            "To: {a}", "To: {v}", "To: Name <{a}>, {v}", "To:  <{a}>", "Cc: {a}",
            "Subject: {v}", "Subject: {v} {a} {v}", 'Subject: "{v}', "Subject: {a}",
            "Received: from h by k for <{a}>; now", "Received: by k for {a};{v}",
            "Received: from x for {v} for <{a}>; z", "Reply-To: {a}", "Delivered-To: {a}",
            "X-Long: " + "y" * 120, "", "\t{a}", "{v}", "Message-Id: <{v}@{a}>",
        ]
    )  # fmt: skip
    line = template.format(a=address, b=rng.choice(ADDRESSES), v=_value(rng))
    return line.upper() if rng.random() < 0.1 else line


def _text(rng: random.Random) -> str:
    return "\n".join(_line(rng) for _ in range(rng.randint(1, 9))) + rng.choice(["\n", ""])


@pytest.mark.parametrize("pattern", SHAPES)
def test_the_condition_holds_wherever_the_regex_matches(pattern: str) -> None:
    regex = re.compile(pattern, FLAGS)
    check = backrefs.precheck(regex)
    assert check is not None
    rng = random.Random(pattern)
    matched = pruned = 0
    for _ in range(2500):
        text = _text(rng)
        if regex.search(text):
            matched += 1
            assert check(text), text
        elif not check(text):
            pruned += 1
    assert matched >= 5 and pruned >= 600, (matched, pruned)


def test_only_the_known_patterns_with_their_flags() -> None:
    assert backrefs.precheck(re.compile(SHAPES[0], re.IGNORECASE)) is None
    assert backrefs.precheck(re.compile(r"\nFrom: (\S+)\n.*\1", FLAGS)) is None


COMMON = ["a", "word", "x" * 500, "\r", "\n", "\n\n", " ", "\t", ".", "\xe9"]
LINE_RULES = [
    (r"^[^\r\n]{998}", re.MULTILINE | re.ASCII, ["x" * 500]),
    (
        r"^\s*(?:[a-z]+\s+){10}\.$",
        re.MULTILINE | re.ASCII,
        [" .", "\x0b.", "one two three four five six seven eight nine ten "],
    ),
    (
        r"^(?:Subject|From|To|Reply-To):\S",
        FLAGS,
        ["Subject:", "From:x", "to:\t", "REPLY-TO:y", "\nTo:"],
    ),
    (r"^Message-Id:.*?^Received:", FLAGS, ["Message-ID: <a@b>", "\nreceived: x", "\nReceived:"]),
    (
        r"^\s*\[ ip=(?!127)([\d.]+) [^\[]*\bhelo=(?:![\d.]{7,15}!)? [^\[]*\[ ip=\1 [^\]]*\]\s*$",
        re.ASCII,
        [
            "[ ip=1.2.3.4 rdns= helo= by= ] ",
            "[ ip=127.0.0.1 helo= ] ",
            "[ ip=1.2.3.4 ",
            "] ",
            "[ ip=1.2.3.4 helo=!1.2.3.4! ] ",
            "[ ip=5.6.7.8 helo= ] ",
            "[ ip=5.6.7.8 ",
        ],
    ),
    (
        r"^From:\s+([^<]\S+\s\S+)\s(?=.{1,2048}^\1\r?$)",
        re.MULTILINE | re.DOTALL | re.ASCII,
        ["From: John Smith ", "\nFrom:  <j@x> Smith\n", "John Smith", "Smith\r", "\nJohn Smith"],
    ),
    (
        r"^(?!Accept-Language|Authentication-Results|Content-|DomainKey-Signature|DKIM-|List-|"
        r"MIME-|Received-SPF|Return-Path|Thread-|User-Agent|Tracking-Code)(?:[a-z]{4,}-[a-z]{3,}|"
        r"[a-z]{3,}-[a-z]{4,}):\s+\d(?=\S{6,}\s*$)[\da-f]*(?:[-.]\w+)*\s*$",
        FLAGS,
        [
            "\nAbcd-efg:",
            "Spam-Mark: ",
            "X-Mailman-Version: 2.0.11",
            "-Length:",
            " 1234567",
            "\t9abcdef",
            "123456",
            "List-Id:",
            "\nxy-abcd:",
            "\n",
        ],
    ),
]


@pytest.mark.parametrize(("pattern", "flags", "pieces"), LINE_RULES)
def test_the_line_conditions_hold_wherever_the_regex_matches(
    pattern: str, flags: int, pieces: list[str]
) -> None:
    regex = re.compile(pattern, flags)
    check = prechecks.precheck(regex)
    assert check is not None
    rng = random.Random(pattern)
    matched = pruned = 0
    for _ in range(3000):
        text = "".join(rng.choice([*COMMON, *pieces, *pieces]) for _ in range(rng.randint(0, 12)))
        if regex.search(text):
            matched += 1
            assert check(text), text
        elif not check(text):
            pruned += 1
    assert matched >= 20 and pruned >= 300, (matched, pruned)
    assert prechecks.precheck(re.compile(pattern)) is None  # other flags: unknown


def test_the_spaced_dot_condition_is_a_white_space_then_a_dot_at_a_line_end() -> None:
    check = prechecks.precheck(re.compile(r"^\s*(?:[a-z]+\s+){10}\.$", re.MULTILINE | re.ASCII))
    assert check is not None
    spaces = " \t\n\r\x0b\x0c"
    rng = random.Random("spaced dot")
    seen = {True: 0, False: 0}
    for _ in range(5000):
        text = "".join(
            rng.choice(["a", ".", "\n", " ", "\t", "\r", "\x0b", ".\n"]) for _ in range(8)
        )
        expected = text.endswith(tuple(f"{s}." for s in spaces)) or any(
            f"{s}.\n" in text for s in spaces
        )
        assert check(text) is expected, repr(text)
        seen[expected] += 1
    assert min(seen.values()) >= 500, seen
