"""The prepared rule set kept on disk: a warm start reads it, a stale or
broken entry is ignored and written again, a changed rule file invalidates it."""

from __future__ import annotations

import os
import pickle
import re
from pathlib import Path

import pytest

from authfakes import make_tx
from mailmoat.config import RulesConfig
from mailmoat.rules import engine, setcache, sources
from mailmoat.rules.matcher import RuleSet

MESSAGE = (
    b"Received: from relay.example.net (relay.example.net [198.51.100.7])\r\n"
    b"\tby mx.example.org (Postfix) with ESMTP id ABC123\r\n"
    b'From: "Big Winner" <winner@lottery.example>\r\n'
    b"To: you@example.org\r\n"
    b"Subject: You WON a prize\r\n"
    b"Content-Type: text/plain\r\n"
    b"\r\n"
    b"Claim your cash prize now at http://claim.lottery.example/now\r\n"
)

RULES = """
header   T_SUBJ_WON   Subject =~ /\\bwon\\b/i
score    T_SUBJ_WON   2.5
body     T_CASH       /cash prize/
describe T_CASH       Cash prize
body     T_BIG        /(?:claim|grab)\\s+your/i
uri      T_URI        /lottery\\.example/
header   T_RELAY      X-Spam-Relays-External =~ /ip=198\\.51\\.100\\.7 /
header   T_HAS_TO     exists:To
meta     T_BOTH       T_SUBJ_WON && T_CASH
include  more.inc
"""


@pytest.fixture
def rules_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MAILMOAT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(setcache, "LAZY_SIZE", 20)  # T_BIG's regex is kept lazy
    monkeypatch.setattr(sources, "_CACHE", {})  # the per-process cache: from disk only
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "local.cf").write_text(RULES)
    (folder / "more.inc").write_text("body T_NOW /prize now/\n")
    return folder


def _load(folder: Path) -> tuple[RuleSet, sources.LoadReport]:
    sources._CACHE.clear()
    return sources.load_configured(
        RulesConfig(bundled=False, sa_default=False, sa_paths=(str(folder),))
    )


def _hits(rule_set: RuleSet) -> dict[str, int]:
    tx = make_tx(MESSAGE)
    return {rule.name: count for rule, count in rule_set.match_counts(tx)}


def _entries() -> list[Path]:
    return sorted((engine.cache_dir().parent / "rulesets").glob("*.pickle"))


EXPECTED = {
    "T_SUBJ_WON": 1,
    "T_CASH": 1,
    "T_BIG": 1,
    "T_URI": 1,
    "T_RELAY": 1,
    "T_HAS_TO": 1,
    "T_BOTH": 1,
    "T_NOW": 1,
}


def test_a_warm_start_reads_the_rule_set_without_translating(
    rules_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built, report = _load(rules_dir)
    assert _hits(built) == EXPECTED
    assert len(_entries()) == 1

    def no_translation(*args: object) -> None:
        raise AssertionError("rules translated again")

    monkeypatch.setattr(sources, "_load", no_translation)
    stored, stored_report = _load(rules_dir)
    assert stored is not built  # read from disk, not the per-process cache
    assert _hits(stored) == EXPECTED
    assert [r.name for r in stored] == [r.name for r in built]
    assert {r.name: r.score for r in stored}["T_SUBJ_WON"] == 2.5
    assert stored_report.sa.files == report.sa.files
    assert stored.engine_rules == built.engine_rules
    big = next(r for r in stored if r.name == "T_BIG").regex
    assert isinstance(big, setcache.LazyPattern)  # compiled on first use only
    assert big.search("CLAIM   your") and not big.search("claim my")


@pytest.mark.parametrize(
    "garbage",
    [b"", b"not a pickle", pickle.dumps({"key": "another", "files": [], "value": None})],
)
def test_a_broken_or_foreign_entry_is_ignored_and_written_again(
    rules_dir: Path, garbage: bytes
) -> None:
    _load(rules_dir)
    (entry,) = _entries()
    entry.write_bytes(garbage)
    rebuilt, _ = _load(rules_dir)
    assert _hits(rebuilt) == EXPECTED
    assert setcache.load(entry.stem) is not None  # a valid entry again


def test_a_truncated_entry_is_ignored(rules_dir: Path) -> None:
    _load(rules_dir)
    (entry,) = _entries()
    entry.write_bytes(entry.read_bytes()[: entry.stat().st_size // 2])
    assert setcache.load(entry.stem) is None
    assert _hits(_load(rules_dir)[0]) == EXPECTED


def test_a_changed_rule_file_is_read_again(rules_dir: Path) -> None:
    _load(rules_dir)
    cf = rules_dir / "local.cf"
    stat = cf.stat()
    # Same size and modification time: only the content tells.
    cf.write_text(RULES.replace("/cash prize/", "/cash piece/"))
    os.utime(cf, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    changed = _hits(_load(rules_dir)[0])
    assert "T_CASH" not in changed and "T_BOTH" not in changed
    assert len(_entries()) == 2  # one per content


def test_a_changed_included_file_makes_the_entry_stale(rules_dir: Path) -> None:
    _load(rules_dir)
    (rules_dir / "more.inc").write_text("body T_NOW /prize later/\n")
    assert "T_NOW" not in _hits(_load(rules_dir)[0])
    (rules_dir / "more.inc").write_text("body T_NOW /prize now/\n")
    assert _hits(_load(rules_dir)[0]) == EXPECTED


def test_a_new_rule_file_in_a_directory_is_read(rules_dir: Path) -> None:
    _load(rules_dir)
    (rules_dir / "zz.cf").write_text("body T_EXTRA /claim/i\n")
    assert _hits(_load(rules_dir)[0]) == {**EXPECTED, "T_EXTRA": 1}


def test_an_unwritable_cache_still_loads(rules_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = rules_dir.parent / "blocker"
    blocker.write_text("a file where the cache directory would be")
    monkeypatch.setenv("MAILMOAT_CACHE", str(blocker))
    assert _hits(_load(rules_dir)[0]) == EXPECTED


def test_lazy_pattern_behaves_as_the_compiled_regex() -> None:
    flags = re.compile("", re.I).flags  # a compiled str regex's flags have re.U too
    lazy = setcache.LazyPattern(r"(a+)(b)?", flags)
    assert lazy.pattern == "(a+)(b)?" and lazy.flags == flags
    assert lazy.match("xAAb", 1) is not None and lazy.fullmatch("aab") is not None
    assert [m.group(1) for m in lazy.finditer("a ba AA")] == ["a", "a", "AA"]
    assert lazy.groups == 2  # anything else through the compiled regex
    assert pickle.loads(pickle.dumps(lazy)).search("xxA") is not None
    # Equal to the regex it stands for (rules read back compare equal to built ones).
    assert lazy == re.compile(r"(a+)(b)?", re.I) and re.compile(r"(a+)(b)?", re.I) == lazy
    assert lazy != re.compile(r"(a+)(b)?") and lazy != "(a+)(b)?"


def test_only_the_newest_entries_are_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILMOAT_CACHE", str(tmp_path / "cache"))
    for n in range(setcache.KEPT + 3):
        setcache.store(f"key{n:02d}", [], n)
        entry = setcache.entry_path(f"key{n:02d}")
        os.utime(entry, ns=(n * 10**9, n * 10**9))  # distinct ages whatever the clock
    kept = sorted(p.stem for p in entry.parent.glob("*.pickle"))
    assert kept == [f"key{n:02d}" for n in range(3, setcache.KEPT + 3)]
    assert setcache.load("key10") == 10 and setcache.load("key00") is None
