"""The multi-pattern engine (Hyperscan) and the backtracking guard.

Contract: ``available()`` says whether Hyperscan can be imported (the
``hyperscan`` wheel; without it the matcher uses its pure-Python literal
prefilter for everything). ``Prefilter(patterns)`` compiles Python regexes (their source and flags)
into Hyperscan databases in prefilter mode: ``scan(data)`` returns the ids
of the patterns that *may* match somewhere (a superset: each value of a
text is searched again with ``re``), ``^``/``$`` being taken at every line.
``accepted`` lists the ids it took; a pattern Hyperscan refuses as too
large is prefiltered through a smaller superset of it (``approx``), one it
refuses otherwise is left to the pure-Python path. Each ``Prefilter`` also
holds every pattern narrowed to what it can match in ASCII text
(``asciionly``) in databases of its own, and scans pure-ASCII data with
those: the look-alike rules lose their non-ASCII alternatives there.
``Exact(regex)`` compiles one regex exactly (no prefilter): its ``search``
decides a match in linear time, without backtracking. ``backtracking_risk``
says whether a regex has the shape that makes ``re`` backtrack
exponentially (a repeat of unbounded length around another repeat or an
alternation): such a regex is never run with ``re`` on message text; it
runs through ``Exact`` or, when Hyperscan cannot take it, not at all
(the loaders count it). Texts are Latin-1 strings (bytes): Hyperscan
scans their bytes, with ASCII semantics, as ``re.ASCII`` does.

Compiling is slow (seconds for the whole SpamAssassin set): each compiled
database is kept in ``cache_dir()`` under the hash of what it holds, so a
restart or a reload compiles only what changed. A ``Prefilter`` or an
``Exact`` pickles as what it was compiled from; unpickling reads the
compiled databases back from that cache (or compiles them again).

Failure mode: a database that cannot be built raises ``EngineError`` from
``Exact`` (the caller skips that rule); ``Prefilter`` drops what it cannot
compile. Scans do not raise.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from mailmoat.rules.approx import line_exact, superset
from mailmoat.rules.asciionly import ascii_variant

# The backtracking guard is part of this module's contract (re-exported).
from mailmoat.rules.shapes import backtracking_risk as backtracking_risk
from mailmoat.rules.shapes import newline_after_caret

try:
    _hs: Any = importlib.import_module("hyperscan")
except ImportError:  # the engine is optional: the pure-Python path takes over
    _hs = None

_WIDEN = 8  # counted repeats above this become unbounded in prefilter patterns
DISABLED = False  # tests set it to run the pure-Python path


class EngineError(Exception):
    pass


def available() -> bool:
    return _hs is not None and not DISABLED


def hyperscan_source(regex: re.Pattern[str], lines: bool) -> bytes:
    """``regex``'s pattern in Hyperscan's (PCRE) syntax; with ``lines``,
    string anchors become line anchors (a superset, for joined values)."""
    source = regex.pattern
    source = source.replace("(?P<", "(?<")
    source = re.sub(r"\(\?P=(\w+)\)", r"\\k<\1>", source)
    if lines:
        source = re.sub(r"(?<!\\)((?:\\\\)*)\\A", r"\1^", source)
        source = re.sub(r"(?<!\\)((?:\\\\)*)\\Z", r"\1$", source)
        source = widen_repeats(source)
    if regex.flags & re.VERBOSE:
        source = "(?x)" + source
    return source.encode("latin-1", "backslashreplace")


_REPEAT = re.compile(r"\\.|\[(?:\^?\]?)(?:\\.|[^\]])*\]|\{(\d+)(?:,(\d*))?\}", re.S)


def widen_repeats(source: str) -> str:
    """Counted repeats ``{m,n}`` with a large ``n`` become ``{m,}``: a superset
    Hyperscan compiles in a fraction of the time (large counted repeats are
    what makes its compiler slow)."""

    def widen(match: re.Match[str]) -> str:
        if match.group(1) is None:
            return match.group()  # an escape or a class: unchanged
        low, high = match.group(1), match.group(2)
        if high == "" or (high is None and int(low) <= _WIDEN) or (high and int(high) <= _WIDEN):
            return match.group()
        return "{" + str(min(int(low), _WIDEN)) + ",}"

    return _REPEAT.sub(widen, source)


def _flags(regex: re.Pattern[str], prefilter: bool) -> int:
    value = _hs.HS_FLAG_ALLOWEMPTY | _hs.HS_FLAG_SINGLEMATCH
    if prefilter:
        value |= _hs.HS_FLAG_PREFILTER | _hs.HS_FLAG_MULTILINE
    elif regex.flags & re.MULTILINE:
        value |= _hs.HS_FLAG_MULTILINE
    if regex.flags & re.IGNORECASE:
        value |= _hs.HS_FLAG_CASELESS
    if regex.flags & re.DOTALL:
        value |= _hs.HS_FLAG_DOTALL
    return int(value)


def cache_dir() -> Path:
    """Where compiled databases are kept (``MAILMOAT_CACHE``, else the user's cache)."""
    base = os.environ.get("MAILMOAT_CACHE") or os.environ.get("XDG_CACHE_HOME")
    root = Path(base) if base else Path.home() / ".cache"
    return (root if os.environ.get("MAILMOAT_CACHE") else root / "mailmoat") / "hyperscan"


def _compile(items: Sequence[tuple[int, bytes, int]]) -> Any:
    """A block-mode database of ``items`` (id, source, flags), from the cache
    when the same items were compiled before (compiling is the slow part);
    ``_hs.error`` when Hyperscan refuses them (remembered too)."""
    digest = hashlib.sha256(repr((_hs.__version__, list(items))).encode()).hexdigest()
    path = cache_dir() / digest[:2] / digest
    try:
        data = path.read_bytes()
    except OSError:
        data = None
    if data is not None:
        if data.startswith(b"refused:"):
            raise _hs.error(data[len(b"refused:") :].decode("utf-8", "replace"))
        with contextlib.suppress(Exception):  # a stale or torn file: compile again
            loaded = _hs.loadb(data, _hs.HS_MODE_BLOCK)
            loaded.scratch = _hs.Scratch(loaded)
            return loaded
    database = _hs.Database()
    try:
        database.compile(
            expressions=[source for _, source, _ in items],
            ids=[ident for ident, _, _ in items],
            flags=[flags for _, _, flags in items],
        )
    except _hs.error as exc:
        _store(path, b"refused:" + str(exc).encode())
        raise
    _store(path, _hs.dumpb(database))
    return database


def _store(path: Path, data: bytes) -> None:
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        partial.write_bytes(data)
        partial.replace(path)


class Prefilter:
    """Regexes in Hyperscan databases (prefilter mode, ``chunk`` per database:
    one database for all compiles far slower than its parts). With
    ``lines``, the regexes of a line text compiled exactly instead
    (``approx.line_exact``): ``scan`` over the lines joined by newlines then
    gives exactly the patterns that match one of the lines, no superset.
    With ``whole``, the regexes compiled exactly as they are (``whole_item``):
    ``scan`` over one value gives exactly the patterns that match it. Data
    that is pure ASCII is scanned with the ASCII databases (same answer)."""

    def __init__(
        self,
        patterns: Iterable[tuple[int, re.Pattern[str]]],
        chunk: int = 256,
        lines: bool = False,
        whole: bool = False,
    ) -> None:
        self.lines = lines
        self.accepted: set[int] = set()
        # (database, the caller's id of each of its patterns): ids inside a
        # database are local, so the compiled-database cache does not depend
        # on where the patterns sit in the whole rule set.
        self.databases: list[tuple[Any, list[int]]] = []
        # What each database was compiled from: pickled in its place (the
        # compiled one is read back from the cache on unpickling).
        self.sources: list[list[tuple[int, bytes, int]]] = []
        # The same for pure-ASCII data: each pattern narrowed to what it can
        # match there (``asciionly``), those that cannot match left out.
        self.ascii_databases: list[tuple[Any, list[int]]] = []
        self.ascii_sources: list[list[tuple[int, bytes, int]]] = []
        make = whole_item if whole else _line_item if lines else _prefilter_item
        items: list[tuple[int, bytes, int]] = []
        ascii_items: list[tuple[int, bytes, int]] = []
        for ident, regex in patterns:
            item = make(ident, regex)
            if item is None:
                continue  # left to the pure-Python path
            items.append(item)
            narrowed = ascii_variant(regex)
            if narrowed is not None:
                narrow_item = None if narrowed is regex else make(ident, narrowed)
                ascii_items.append(item if narrow_item is None else narrow_item)
        self.accepted.update(ident for ident, _, _ in items)
        self.databases, self.sources = _databases(items, chunk)
        if ascii_items == items:
            self.ascii_databases, self.ascii_sources = self.databases, self.sources
        else:
            self.ascii_databases, self.ascii_sources = _databases(ascii_items, chunk)

    def __getstate__(self) -> dict[str, Any]:
        return {
            "lines": self.lines,
            "accepted": self.accepted,
            "sources": self.sources,
            "ids": [ids for _, ids in self.databases],
            "ascii_sources": self.ascii_sources,
            "ascii_ids": [ids for _, ids in self.ascii_databases],
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.lines = state["lines"]
        self.accepted = state["accepted"]
        self.sources = state["sources"]
        self.ascii_sources = state["ascii_sources"]
        self.databases = _loaded(self.sources, state["ids"])
        if self.ascii_sources == self.sources:
            self.ascii_databases = self.databases
        else:
            self.ascii_databases = _loaded(self.ascii_sources, state["ascii_ids"])

    def scan(self, data: bytes) -> set[int]:
        if self.lines:
            # Hyperscan 5.4 misses some matches that end at the very end of the
            # data (``^\s+$`` on a last line of spaces): a newline after the
            # last line, harmless since no line pattern matches an empty line.
            data += b"\n"
        found: set[int] = set()
        for database, ids in self.ascii_databases if data.isascii() else self.databases:
            found.update(map(ids.__getitem__, _scan(database, data)))
        return found


def _databases(
    items: list[tuple[int, bytes, int]], chunk: int
) -> tuple[list[tuple[Any, list[int]]], list[list[tuple[int, bytes, int]]]]:
    """``items`` compiled, ``chunk`` per database: (database, the caller's
    ids of its patterns) and what each was compiled from (local ids)."""
    databases: list[tuple[Any, list[int]]] = []
    sources: list[list[tuple[int, bytes, int]]] = []
    for start in range(0, len(items), chunk):
        batch = items[start : start + chunk]
        local = [(n, source, flags) for n, (_, source, flags) in enumerate(batch)]
        databases.append((_compile(local), [ident for ident, _, _ in batch]))
        sources.append(local)
    return databases, sources


def _loaded(
    sources: list[list[tuple[int, bytes, int]]], ids: list[list[int]]
) -> list[tuple[Any, list[int]]]:
    return [(_compile(local), each) for local, each in zip(sources, ids, strict=True)]


def _line_item(ident: int, regex: re.Pattern[str]) -> tuple[int, bytes, int] | None:
    """``regex`` as one exact pattern over lines joined (``approx.line_exact``),
    None when that is not exact or Hyperscan refuses it."""
    # No class of ``source`` holds the newline, so no ``^`` is followed by
    # something that can match one (``newline_after_caret``): Hyperscan
    # decides such patterns reliably together.
    source = line_exact(regex)
    if source is None or regex.search("") is not None:
        return None  # not exact, or may match an empty line (see ``scan``)
    flags = _hs.HS_FLAG_ALLOWEMPTY | _hs.HS_FLAG_SINGLEMATCH | _hs.HS_FLAG_MULTILINE
    if regex.flags & re.IGNORECASE:
        flags |= _hs.HS_FLAG_CASELESS
    item = (ident, source.encode("latin-1"), int(flags))
    try:
        _compile([(0, item[1], item[2])])
    except _hs.error:
        return None
    return item


_END_OF_STRING = re.compile(r"(?<!\\)((?:\\\\)*)\\Z")


def whole_item(ident: int, regex: re.Pattern[str]) -> tuple[int, bytes, int] | None:
    """``regex`` as one exact pattern over a whole value, None when Hyperscan
    refuses it (look-arounds, back-references...) or might decide it
    differently: it must be ``re.ASCII`` (classes with ASCII semantics, as
    Hyperscan scans bytes), not verbose, and, when multi-line, without a
    ``^`` followed by something that can match a newline. Python's ``\\Z``
    (the very end) is PCRE's ``\\z``; ``$`` and ``^`` mean the same in both."""
    if not regex.flags & re.ASCII or regex.flags & re.VERBOSE:
        return None
    if regex.flags & re.MULTILINE and newline_after_caret(regex):
        return None
    source = _END_OF_STRING.sub(r"\1\\z", hyperscan_source(regex, False).decode("latin-1"))
    item = (ident, source.encode("latin-1"), _flags(regex, False))
    try:
        _compile([(0, item[1], item[2])])
    except _hs.error:
        return None
    return item


def _prefilter_item(ident: int, regex: re.Pattern[str]) -> tuple[int, bytes, int] | None:
    """``regex`` as one prefilter pattern (id, source, flags), or, when
    Hyperscan refuses it (too large), a smaller superset of it
    (``approx.superset``); None when neither compiles."""
    item = _compiled_prefilter_item(ident, regex)
    if item is None and not newline_after_caret(regex):
        wider = superset(regex)  # only now: widening is slow to work out
        item = _compiled_prefilter_item(ident, wider) if wider is not None else None
    return item


def _compiled_prefilter_item(ident: int, regex: re.Pattern[str]) -> tuple[int, bytes, int] | None:
    if newline_after_caret(regex):
        return None  # Hyperscan misses some of these among others
    item = (ident, hyperscan_source(regex, True), _flags(regex, True))
    try:
        _compile([(0, item[1], item[2])])
    except _hs.error:
        return None
    return item


def _collect(ident: int, start: int, end: int, flags: int, found: list[int]) -> None:
    """The match handler of every scan: the pattern's id into ``found`` (the
    scan's context). Module-level: no handler is made per scan."""
    found.append(ident)


def _scan(database: Any, data: bytes) -> list[int]:
    """The ids of the patterns of ``database`` that match ``data`` (each
    once: single-match patterns)."""
    found: list[int] = []
    if database is not None:
        database.scan(data, match_event_handler=_collect, context=found)
    return found


class Exact:
    """One regex compiled exactly: a match decided without backtracking."""

    def __init__(self, regex: re.Pattern[str]) -> None:
        if not available():
            raise EngineError("no multi-pattern engine")
        self.item = (0, hyperscan_source(regex, False), _flags(regex, False))
        try:
            self.database = _compile([self.item])
        except _hs.error as exc:
            raise EngineError(str(exc)) from None

    def __getstate__(self) -> tuple[int, bytes, int]:
        return self.item

    def __setstate__(self, item: tuple[int, bytes, int]) -> None:
        self.item = item
        self.database = _compile([item])

    def search(self, text: str) -> bool:
        found: list[int] = []

        def seen(ident: int, start: int, end: int, flags: int, context: object) -> bool:
            found.append(ident)
            return True  # stop at the first match

        with contextlib.suppress(_hs.error):  # raised when the handler stops the scan
            self.database.scan(text.encode("latin-1", "replace"), match_event_handler=seen)
        return bool(found)
