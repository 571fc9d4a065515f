"""SQLite backend of the Store: one file, WAL, the embedded default.

Each operation is one SQLite transaction, so it is atomic against other
processes sharing the file. Calls are synchronous inside ``async def``: with
WAL and ``synchronous=NORMAL`` an operation takes tens of microseconds, less
than a thread hop would cost. ``path=":memory:"`` gives a private in-memory
store for unit tests. Expired rows read as absent and are deleted by
``purge()`` (the server calls it periodically) and lazily on write.
The file holds history (addresses, subjects) and the model: a new file and
its directory are created private (0600, 0700) and an existing file that
others can read is tightened to 0600 (SQLite gives its -wal and -shm files
the database file's mode).

Files that cannot be written: SQLite maps the WAL index (``-shm``) into
memory, and a write to that mapping once the file is immutable or on a
read-only mount kills the process with SIGBUS, out of reach of any error
handling. So the store refuses to open when the database, its ``-wal`` or
``-shm`` file or their directory cannot be written, and checks the ``-shm``
file before every operation (one ``access(2)``, about a microsecond): an
operation on a store that cannot be written raises ``StoreError`` (the
``store.fail_mode`` applies) instead of touching the mapping. A corrupted
file raises ``StoreError`` at open.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import os
import sqlite3
import stat
import time
from collections.abc import Callable, Mapping, Sequence
from itertools import chain
from pathlib import Path
from typing import cast

from mailmoat.metrics import count_store_error
from mailmoat.store.base import StoreError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB, expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS hash_key (key TEXT PRIMARY KEY, expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS hash (
    key TEXT NOT NULL, field TEXT NOT NULL, value, PRIMARY KEY (key, field)
);
CREATE TABLE IF NOT EXISTS list (
    key TEXT NOT NULL, seq INTEGER PRIMARY KEY AUTOINCREMENT, value BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS list_by_key ON list (key, seq);
CREATE TABLE IF NOT EXISTS list_key (key TEXT PRIMARY KEY, expires REAL NOT NULL);
CREATE INDEX IF NOT EXISTS kv_expires ON kv (expires);
"""


_BUSY_TIMEOUT = 5.0
# The connection's page cache, at most (SQLite's default is 2 MiB). A day of
# bulk fingerprints and counters outgrows 2 MiB within hours, and then
# every lookup reads pages again from the file (a pread each: about 15 us
# per bulk read of 15 keys in a 5 MB file).
_CACHE_KIB = 16 * 1024
# WAL pages between checkpoints (SQLite's default is 1000: 4 MiB). Each
# checkpoint copies every page written since the last one back into the
# database file; a page written by many transactions in between is copied
# once, so a longer interval means less copying per write (the bulk
# detector's keys are random: its writes touch pages all over the key
# index). The WAL file grows to about 16 MiB and is reused from its start
# after each checkpoint. About 15% less CPU in the bulk check's store
# statements on the corpus (docs/benchmarks.md).
_CHECKPOINT_PAGES = 4000
log = logging.getLogger("mailmoat.store")


def _private_file(path: str) -> None:
    """Create ``path`` as 0600 (directory 0700) or tighten it to 0600."""
    Path(path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for name in (path, f"{path}-wal", f"{path}-shm"):
        try:
            if stat.S_IMODE(os.stat(name).st_mode) & 0o077:
                os.chmod(name, 0o600)
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("store: cannot make %s private (%s)", name, exc)


# Keys per statement of ``add_many``/``incr_many`` (SQLite allows 32766
# parameters per statement since 3.32; 999 before).
_CHUNK = 200


@functools.lru_cache(maxsize=64)
def _get_sql(count: int) -> str:
    """``get_many`` of ``count`` keys: the keys, then ?: now."""
    return f"SELECT key, value FROM kv WHERE key IN ({','.join('?' * count)}) AND expires>?"


@functools.lru_cache(maxsize=64)
def _add_sql(count: int) -> str:
    """``add`` of ``count`` keys in one statement: ?1 expiry, ?2 now, then
    (key, value) pairs."""
    rows = ",".join(f"(?{3 + 2 * n},?{4 + 2 * n},?1)" for n in range(count))
    return (
        f"INSERT INTO kv (key, value, expires) VALUES {rows} ON CONFLICT (key) DO UPDATE"
        " SET value=excluded.value, expires=excluded.expires WHERE kv.expires<=?2 RETURNING key"
    )


@functools.lru_cache(maxsize=64)
def _incr_sql(count: int) -> str:
    """``incr`` of ``count`` distinct keys in one statement: ?1 amount, ?2
    expiry, ?3 now, then the keys. A live counter grows and keeps its expiry,
    a missing or expired one starts afresh."""
    rows = ",".join(f"(?{4 + n},?1,?2)" for n in range(count))
    return (
        f"INSERT INTO kv (key, value, expires) VALUES {rows} "
        "ON CONFLICT (key) DO UPDATE SET "
        "value = CASE WHEN kv.expires > ?3 THEN CAST(kv.value AS INTEGER) + ?1 ELSE ?1 END, "
        "expires = CASE WHEN kv.expires > ?3 THEN kv.expires ELSE ?2 END "
        "RETURNING key, value"
    )


class SqliteStore:
    def __init__(self, path: str | Path, clock: Callable[[], float] = time.time) -> None:
        self.path = str(path)
        self.clock = clock
        self._shm = "" if self.path == ":memory:" else self.path + "-shm"
        self._abandoned = False
        if self.path != ":memory:":
            try:
                _private_file(self.path)
            except OSError as exc:
                raise self._failed(exc) from exc
            problem = _unwritable(self.path)
            if problem:
                raise StoreError(f"sqlite store {self.path}: {problem}")
        try:
            self._conn = sqlite3.connect(
                self.path, timeout=_BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
            )
            self._prepare()
        except (sqlite3.Error, OSError) as exc:
            raise self._failed(exc) from exc

    def _prepare(self) -> None:
        """WAL mode and the schema. Workers starting together open the same
        new file at once, and switching it to WAL can fail with "database is
        locked" at once, without SQLite's busy wait: retried until the busy
        timeout has passed."""
        deadline = time.monotonic() + _BUSY_TIMEOUT
        while True:
            try:
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute("PRAGMA synchronous=NORMAL")
                self._conn.execute(f"PRAGMA cache_size=-{_CACHE_KIB}")
                self._conn.execute(f"PRAGMA wal_autocheckpoint={_CHECKPOINT_PAGES}")
                self._conn.executescript(_SCHEMA)
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    @property
    def _db(self) -> sqlite3.Connection:
        """The connection, once the ``-shm`` mapping is known to be writable."""
        if self._shm and not os.access(self._shm, os.W_OK) and os.path.exists(self._shm):
            self._abandon()
            raise StoreError(f"sqlite store {self.path}: {self._shm} cannot be written")
        return self._conn

    def _abandon(self) -> None:
        """Never close this connection: closing it writes to the mapping that
        can no longer be written (SIGBUS). It is leaked on purpose, kept
        alive until the process ends without being finalized."""
        if not self._abandoned:
            self._abandoned = True
            ctypes.pythonapi.Py_IncRef(ctypes.py_object(self._conn))

    @classmethod
    def from_url(cls, url: str, clock: Callable[[], float] = time.time) -> SqliteStore:
        """``sqlite:///relative/path.db``, ``sqlite:////absolute.db``, ``sqlite://:memory:``."""
        rest = url.removeprefix("sqlite://")
        if rest in (":memory:", "/:memory:"):
            return cls(":memory:", clock)
        return cls(rest[1:] if rest.startswith("/") else rest, clock)

    def _failed(self, exc: Exception) -> StoreError:
        count_store_error("sqlite")
        return StoreError(f"sqlite store {self.path}: {exc}")

    def _tx(self, statements: Callable[[sqlite3.Connection], object]) -> object:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                result = statements(self._db)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
            return result
        except sqlite3.Error as exc:
            raise self._failed(exc) from exc

    def _one(self, sql: str, args: tuple[object, ...]) -> tuple[object, ...] | None:
        try:
            row: tuple[object, ...] | None = self._db.execute(sql, args).fetchone()
            return row
        except sqlite3.Error as exc:
            raise self._failed(exc) from exc

    def _all(self, sql: str, args: tuple[object, ...]) -> list[tuple[object, ...]]:
        """Run to completion (a RETURNING statement only ends, and commits,
        once all its rows are read)."""
        try:
            rows: list[tuple[object, ...]] = self._db.execute(sql, args).fetchall()
            return rows
        except sqlite3.Error as exc:
            raise self._failed(exc) from exc

    # -- plain keys ---------------------------------------------------------

    async def get(self, key: str) -> bytes | None:
        row = self._one("SELECT value FROM kv WHERE key=? AND expires>?", (key, self.clock()))
        return None if row is None else _as_bytes(row[0])

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        self._one(
            "INSERT OR REPLACE INTO kv (key, value, expires) VALUES (?,?,?)",
            (key, value, self.clock() + ttl),
        )

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        # (Keys are bound as text, so the rows' keys come back as str.)
        rows = cast(
            "list[tuple[str, object]]", self._all(_get_sql(len(keys)), (*keys, self.clock()))
        )
        found = dict(rows)
        return [_as_bytes(found[key]) if key in found else None for key in keys]

    async def add(self, key: str, value: bytes, ttl: float) -> bool:
        return bool(await self.add_many({key: value}, ttl))

    async def add_many(self, values: Mapping[str, bytes], ttl: float) -> frozenset[str]:
        # One statement per chunk of keys (atomic on its own, no BEGIN/COMMIT):
        # insert, or replace a row that has expired; RETURNING lists the rows
        # inserted or replaced, never one the WHERE left alone.
        now = self.clock()
        items = list(values.items())
        created: set[str] = set()
        for start in range(0, len(items), _CHUNK):
            chunk = items[start : start + _CHUNK]
            rows = self._all(_add_sql(len(chunk)), (now + ttl, now, *chain.from_iterable(chunk)))
            created.update(str(row[0]) for row in rows)
        return frozenset(created)

    async def compare_and_set(
        self, key: str, expected: bytes | None, value: bytes, ttl: float
    ) -> bool:
        now = self.clock()

        def swap(db: sqlite3.Connection) -> bool:
            row = db.execute(
                "SELECT value FROM kv WHERE key=? AND expires>?", (key, now)
            ).fetchone()
            current = None if row is None else _as_bytes(row[0])
            if current != expected:
                return False
            db.execute(
                "INSERT OR REPLACE INTO kv (key, value, expires) VALUES (?,?,?)",
                (key, value, now + ttl),
            )
            return True

        return bool(self._tx(swap))

    async def delete(self, key: str) -> None:
        def drop(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM kv WHERE key=?", (key,))
            db.execute("DELETE FROM hash WHERE key=?", (key,))
            db.execute("DELETE FROM hash_key WHERE key=?", (key,))
            db.execute("DELETE FROM list WHERE key=?", (key,))
            db.execute("DELETE FROM list_key WHERE key=?", (key,))

        self._tx(drop)

    async def incr(self, key: str, amount: int, ttl: float) -> int:
        # One statement (atomic on its own in autocommit mode): a live counter
        # grows and keeps its expiry; a missing or expired one starts afresh.
        return (await self.incr_many((key,), amount, ttl))[0]

    async def incr_many(self, keys: Sequence[str], amount: int, ttl: float) -> list[int]:
        # One statement per run of distinct keys (at most ``_CHUNK``), each as
        # ``incr``; a key seen again starts the next statement, so each row of
        # one statement's RETURNING belongs to one key.
        now = self.clock()
        values: list[int] = []
        start = 0
        while start < len(keys):
            chunk: dict[str, None] = {}
            for key in keys[start : start + _CHUNK]:
                if key in chunk:
                    break
                chunk[key] = None
            rows = self._all(_incr_sql(len(chunk)), (amount, now + ttl, now, *chunk))
            found = {str(key): value for key, value in rows}
            for key in chunk:
                value = found[key]
                assert isinstance(value, int)
                values.append(value)
            start += len(chunk)
        return values

    # -- hashes -------------------------------------------------------------

    def _touch_hash(self, db: sqlite3.Connection, key: str, ttl: float) -> None:
        now = self.clock()
        row = db.execute("SELECT expires FROM hash_key WHERE key=?", (key,)).fetchone()
        if row is not None and row[0] <= now:
            db.execute("DELETE FROM hash WHERE key=?", (key,))
        db.execute("INSERT OR REPLACE INTO hash_key (key, expires) VALUES (?,?)", (key, now + ttl))

    async def hincr(self, key: str, field: str, amount: float, ttl: float) -> float:
        def bump(db: sqlite3.Connection) -> float:
            self._touch_hash(db, key, ttl)
            row = db.execute(
                "INSERT INTO hash (key, field, value) VALUES (?,?,?) "
                "ON CONFLICT (key, field) DO UPDATE SET value = value + excluded.value "
                "RETURNING value",
                (key, field, amount),
            ).fetchone()
            return float(row[0])

        return float(self._tx(bump))  # type: ignore[arg-type]

    async def hincr_many(self, increments: Sequence[tuple[str, str, float]], ttl: float) -> None:
        def bump(db: sqlite3.Connection) -> None:
            for key in dict.fromkeys(key for key, _, _ in increments):
                self._touch_hash(db, key, ttl)
            db.executemany(
                "INSERT INTO hash (key, field, value) VALUES (?,?,?) "
                "ON CONFLICT (key, field) DO UPDATE SET value = value + excluded.value",
                increments,
            )

        if increments:
            self._tx(bump)

    async def hset(self, key: str, field: str, value: bytes, ttl: float) -> None:
        def put(db: sqlite3.Connection) -> None:
            self._touch_hash(db, key, ttl)
            db.execute(
                "INSERT OR REPLACE INTO hash (key, field, value) VALUES (?,?,?)",
                (key, field, value),
            )

        self._tx(put)

    def _hash_alive(self, key: str) -> bool:
        row = self._one("SELECT 1 FROM hash_key WHERE key=? AND expires>?", (key, self.clock()))
        return row is not None

    async def hget(self, key: str, field: str) -> bytes | None:
        if not self._hash_alive(key):
            return None
        row = self._one("SELECT value FROM hash WHERE key=? AND field=?", (key, field))
        return None if row is None else _as_bytes(row[0])

    async def hdel(self, key: str, field: str) -> None:
        self._tx(lambda db: db.execute("DELETE FROM hash WHERE key=? AND field=?", (key, field)))

    async def hgetall(self, key: str) -> dict[str, bytes | float]:
        if not self._hash_alive(key):
            return {}
        try:
            rows = self._db.execute("SELECT field, value FROM hash WHERE key=?", (key,)).fetchall()
        except sqlite3.Error as exc:
            raise self._failed(exc) from exc
        return {field: (float(v) if isinstance(v, int | float) else bytes(v)) for field, v in rows}

    # -- capped lists -------------------------------------------------------

    async def push(self, key: str, value: bytes, max_len: int, ttl: float) -> None:
        now = self.clock()

        def prepend(db: sqlite3.Connection) -> None:
            row = db.execute("SELECT expires FROM list_key WHERE key=?", (key,)).fetchone()
            if row is not None and row[0] <= now:
                db.execute("DELETE FROM list WHERE key=?", (key,))
            db.execute(
                "INSERT OR REPLACE INTO list_key (key, expires) VALUES (?,?)", (key, now + ttl)
            )
            db.execute("INSERT INTO list (key, value) VALUES (?,?)", (key, value))
            db.execute(
                "DELETE FROM list WHERE key=? AND seq NOT IN "
                "(SELECT seq FROM list WHERE key=? ORDER BY seq DESC LIMIT ?)",
                (key, key, max_len),
            )

        self._tx(prepend)

    async def range(self, key: str, start: int, stop: int) -> list[bytes]:
        row = self._one("SELECT 1 FROM list_key WHERE key=? AND expires>?", (key, self.clock()))
        if row is None:
            return []
        limit = -1 if stop < 0 else stop - start + 1
        try:
            rows = self._db.execute(
                "SELECT value FROM list WHERE key=? ORDER BY seq DESC LIMIT ? OFFSET ?",
                (key, limit, start),
            ).fetchall()
        except sqlite3.Error as exc:
            raise self._failed(exc) from exc
        return [_as_bytes(r[0]) for r in rows]

    # -- upkeep -------------------------------------------------------------

    async def purge(self) -> int:
        now = self.clock()

        def sweep(db: sqlite3.Connection) -> int:
            gone = db.execute("DELETE FROM kv WHERE expires<=?", (now,)).rowcount
            for table, child in (("hash_key", "hash"), ("list_key", "list")):
                dead = [
                    r[0] for r in db.execute(f"SELECT key FROM {table} WHERE expires<=?", (now,))
                ]
                for key in dead:
                    db.execute(f"DELETE FROM {child} WHERE key=?", (key,))
                    db.execute(f"DELETE FROM {table} WHERE key=?", (key,))
                gone += len(dead)
            return int(gone)

        result = self._tx(sweep)
        assert isinstance(result, int)
        return result

    async def ping(self) -> None:
        self._one("SELECT 1", ())

    async def close(self) -> None:
        if self._shm and not os.access(self._shm, os.W_OK) and os.path.exists(self._shm):
            self._abandon()
        if not self._abandoned:
            self._conn.close()


def _unwritable(path: str) -> str:
    """Why the database at ``path`` cannot be written, or ""."""
    directory = os.path.dirname(path) or "."
    if not os.access(directory, os.W_OK):
        return f"directory {directory} cannot be written"
    for name in (path, path + "-wal", path + "-shm"):
        if os.path.exists(name) and not os.access(name, os.W_OK):
            return f"{name} cannot be written"
    return ""


def _as_bytes(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, memoryview | bytearray):
        return bytes(value)
    return str(value).encode()
