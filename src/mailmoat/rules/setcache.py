"""The prepared rule set kept on disk, so a start does not translate it again.

Contract: ``load(key, inputs)`` returns the ``(RuleSet, LoadReport)`` stored
under ``key`` when it was built from the same inputs, else None; ``store``
keeps one. ``key(...)`` is a digest of everything the rule set is made
from: this format's version, mailmoat's version and the source of the
``mailmoat.rules`` package, Python's and Hyperscan's versions, whether the
engine is used, the ``[rules]`` config, and the name and content of every
rule file named (the bundled TOML rules, each ``.cf`` file of the
SpamAssassin paths, the admin's TOML files). Files read through ``include``
are only known after a load: the entry lists each file read with the
digest of its content, checked again on ``load`` (a changed one makes the
entry stale). Entries live in ``rulesets`` next to the compiled Hyperscan
databases (``engine.cache_dir()``), written whole to a temporary file and
renamed (a reader never sees half of one); the ``KEPT`` newest are kept,
older ones deleted. Large regexes are stored as
``LazyPattern`` (compiled on first use: most of them never run with ``re``).

Failure mode: nothing raises. An entry that cannot be read, unpickled or
checked, or that is stale, is ignored (the caller builds the rule set and
stores it again); a failed write leaves no entry.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import pickle
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import mailmoat
from mailmoat.rules import engine

FORMAT = 1
LAZY_SIZE = 2000  # regexes at least this long are compiled on first use
KEPT = 8  # entries kept (the newest): older ones are for rules since updated


class LazyPattern:
    """A compiled regex in waiting: ``pattern`` and ``flags`` at once, the
    matching methods compile it on their first call."""

    __slots__ = ("_compiled", "flags", "pattern")

    def __init__(self, pattern: str, flags: int) -> None:
        self.pattern = pattern
        self.flags = flags
        self._compiled: re.Pattern[str] | None = None

    def _regex(self) -> re.Pattern[str]:
        if self._compiled is None:
            self._compiled = re.compile(self.pattern, self.flags)
        return self._compiled

    def search(self, text: str, *args: int) -> re.Match[str] | None:
        return self._regex().search(text, *args)

    def match(self, text: str, *args: int) -> re.Match[str] | None:
        return self._regex().match(text, *args)

    def fullmatch(self, text: str, *args: int) -> re.Match[str] | None:
        return self._regex().fullmatch(text, *args)

    def finditer(self, text: str, *args: int) -> Iterator[re.Match[str]]:
        return self._regex().finditer(text, *args)

    def __getattr__(self, name: str) -> Any:  # anything else re.Pattern has
        return getattr(self._regex(), name)

    def __eq__(self, other: object) -> bool:  # as re.Pattern: same source and flags
        if isinstance(other, LazyPattern | re.Pattern):
            return bool(self.pattern == other.pattern and self.flags == other.flags)
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.pattern, self.flags))

    def __reduce__(self) -> tuple[Any, ...]:
        return (LazyPattern, (self.pattern, self.flags))


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_digest(path: str) -> str | None:
    """The digest of a file's content, None when it cannot be read."""
    try:
        return digest(Path(path).read_bytes())
    except OSError:
        return None


def _package_source() -> str:
    """A digest of the ``mailmoat.rules`` sources: changed code, new entries."""
    folder = Path(__file__).parent
    parts = [(p.name, p.read_bytes()) for p in sorted(folder.glob("*.py"))]
    return digest(repr(parts).encode())


def key(config: object, named_files: Iterable[str], bundled_text: str, with_engine: bool) -> str:
    """The digest of everything a rule set is made from (see the module docstring)."""
    hyperscan = getattr(engine._hs, "__version__", None) if with_engine else None
    named = [(path, file_digest(path)) for path in named_files]
    parts = (
        FORMAT,
        mailmoat.__version__,
        _package_source(),
        sys.version,
        hyperscan,
        with_engine,
        repr(config),
        named,
        digest(bundled_text.encode()),
    )
    return digest(repr(parts).encode())


def entry_path(entry_key: str) -> Path:
    return engine.cache_dir().parent / "rulesets" / f"{entry_key}.pickle"


def load(entry_key: str) -> Any | None:
    """What ``store`` kept under ``entry_key``, None when missing, unreadable or stale."""
    try:
        data = entry_path(entry_key).read_bytes()
        entry = pickle.loads(data)
        if not isinstance(entry, dict) or entry.get("key") != entry_key:
            return None
        for path, known in entry["files"]:
            if file_digest(path) != known:
                return None  # a file read (an include) changed since
        return entry["value"]
    except Exception:  # a torn, foreign or incompatible entry: build again
        return None


class _Pickler(pickle.Pickler):
    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, re.Pattern) and len(obj.pattern) >= LAZY_SIZE:
            return (LazyPattern, (obj.pattern, obj.flags))
        return NotImplemented


def store(entry_key: str, files_read: Iterable[str], value: object) -> None:
    """Keep ``value`` under ``entry_key``, with the digest of each file read."""
    path = entry_path(entry_key)
    entry = {"key": entry_key, "files": [(f, file_digest(f)) for f in files_read], "value": value}
    with contextlib.suppress(Exception):  # no entry is better than a failed start
        buffer = io.BytesIO()
        _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(entry)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        partial.write_bytes(buffer.getvalue())
        partial.replace(path)
    with contextlib.suppress(OSError):  # the oldest entries go (rules updated since)
        entries = sorted(path.parent.glob("*.pickle"), key=lambda p: p.stat().st_mtime_ns)
        for old in entries[:-KEPT]:
            old.unlink()
