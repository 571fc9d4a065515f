"""Where the classifier model lives: one place, read and written by everyone.

Contract: ``home_for(config, store)`` names the single source of truth for
the model: the file ``classifier.model_path`` when it is set (*file mode*),
else the model shared in the store (*store mode*). The gateway's classifier,
its autolearn, the dashboard, ``POST /api/learn/*`` and ``mailmoat learn``
all load from and save to that home, so nobody learns into a model the
gateway does not read.

A ``ModelHome`` gives:

- ``load()``: the current model (its ``version`` set); the shipped default
  model, version 0, when the home holds none yet;
- ``save(model, note)``: the next version, by compare-and-set (a file is
  replaced atomically under an ``flock``); ``ModelConflictError`` when
  someone saved since ``model`` was loaded (reload, re-learn, retry);
- ``versions()`` / ``load_version(v)``: the last ``classifier.model_versions``
  saved models, kept for ``mailmoat model rollback``;
- the *ledger*: the digest, label and gradient step of every message learned
  by feedback, so a message can be forgotten (the step taken back) and a
  repeated learn is a no-op.

Versions and ledger live in a ``Store``: the configured one in store mode,
a private SQLite file ``<model_path>.feedback.db`` beside the model in file
mode. Failure mode: ``StoreError``/``OSError`` from the backends propagate;
``ModelFormatError`` when the home holds bytes that are not a model.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mailmoat.classify.classifier import Classifier
from mailmoat.classify.model import Model
from mailmoat.classify.persist import (
    MAGIC,
    MODEL_KEY,
    STORE_TTL,
    ModelConflictError,
    blob_version,
    dumps,
    loads,
)
from mailmoat.store.base import Store
from mailmoat.store.sqlite import SqliteStore


@dataclass(frozen=True)
class VersionInfo:
    version: int
    time: float
    n_learned: int
    note: str


@dataclass(frozen=True)
class LedgerEntry:
    """A message learned by feedback: its label, the step taken, and the
    model version that step first appeared in."""

    label: str
    step: float
    version: int
    time: float

    def to_bytes(self) -> bytes:
        return json.dumps(
            {"label": self.label, "step": self.step, "version": self.version, "time": self.time}
        ).encode()

    @classmethod
    def from_bytes(cls, data: bytes | float) -> LedgerEntry | None:
        try:
            raw = json.loads(data if isinstance(data, bytes) else b"")
            return cls(
                str(raw["label"]), float(raw["step"]), int(raw["version"]), float(raw["time"])
            )
        except (ValueError, KeyError, TypeError):
            return None


class ModelHome(ABC):
    """The current model (``_read``/``_replace``) plus versions and ledger in ``aux``."""

    def __init__(self, aux: Store, key: str, keep: int, seed_path: str = "") -> None:
        self.aux = aux
        self.key = key
        self.keep = max(0, keep)
        self.seed_path = seed_path

    @property
    @abstractmethod
    def where(self) -> str:
        """Where the model lives, for messages to the admin."""

    @abstractmethod
    async def _read(self) -> bytes | None: ...

    @abstractmethod
    async def _replace(self, expected: bytes | None, blob: bytes) -> bool: ...

    async def close(self) -> None:
        """Release what this home opened itself (not a store it was given)."""
        return None

    async def load(self) -> Model:
        data = await self._read()
        if data is not None:
            return loads(data)
        model = Classifier.load(self.seed_path or None).model
        model.version = 0
        return model

    async def save(self, model: Model, note: str = "", *, archive_min_age: float = 0.0) -> int:
        """Save ``model`` as the next version; returns it (see the module doc)."""
        current = await self._read()
        found = blob_version(current)
        if found != model.version:
            raise ModelConflictError(f"{self.where}: version {found}, model has {model.version}")
        version = found + 1
        blob = dumps(model, version=version)
        if not await self._replace(current, blob):
            raise ModelConflictError(f"{self.where}: changed while saving")
        model.version = version
        await self._archive(version, blob, model.n_learned, note, archive_min_age)
        return version

    # -- versions --------------------------------------------------------

    def _archive_key(self, version: int) -> str:
        return f"{self.key}:archive:{version}"

    async def versions(self) -> list[VersionInfo]:
        """The kept versions, newest first."""
        found = []
        for field, value in (await self.aux.hgetall(f"{self.key}:versions")).items():
            try:
                meta = json.loads(value if isinstance(value, bytes) else b"")
                found.append(
                    VersionInfo(int(field), float(meta["time"]), int(meta["n"]), str(meta["note"]))
                )
            except (ValueError, KeyError, TypeError):
                continue
        return sorted(found, key=lambda v: v.version, reverse=True)

    async def load_version(self, version: int) -> Model | None:
        data = await self.aux.get(self._archive_key(version))
        return None if data is None else loads(data)

    async def _archive(
        self, version: int, blob: bytes, n_learned: int, note: str, min_age: float
    ) -> None:
        if self.keep == 0:
            return
        kept = await self.versions()
        if min_age > 0 and kept and time.time() - kept[0].time < min_age:
            return
        meta = json.dumps({"time": time.time(), "n": n_learned, "note": note}).encode()
        await self.aux.set(self._archive_key(version), blob, STORE_TTL)
        await self.aux.hset(f"{self.key}:versions", str(version), meta, STORE_TTL)
        for old in kept[self.keep - 1 :]:
            await self.aux.delete(self._archive_key(old.version))
            await self.aux.hdel(f"{self.key}:versions", str(old.version))

    # -- ledger ----------------------------------------------------------

    async def ledger_get(self, digest: str) -> LedgerEntry | None:
        data = await self.aux.hget(f"{self.key}:learned", digest)
        return None if data is None else LedgerEntry.from_bytes(data)

    async def ledger_put(self, digest: str, entry: LedgerEntry) -> None:
        await self.aux.hset(f"{self.key}:learned", digest, entry.to_bytes(), STORE_TTL)

    async def ledger_drop(self, digest: str) -> None:
        await self.aux.hdel(f"{self.key}:learned", digest)

    async def ledger_drop_after(self, version: int) -> int:
        """Forget ledger entries first seen after ``version`` (a rollback took
        their steps away); returns how many."""
        gone = 0
        for digest, value in (await self.aux.hgetall(f"{self.key}:learned")).items():
            entry = LedgerEntry.from_bytes(value)
            if entry is None or entry.version > version:
                await self.ledger_drop(digest)
                gone += 1
        return gone


class StoreHome(ModelHome):
    """Store mode: the model under ``classifier_model`` in the shared store,
    its version mirrored in ``classifier_model:version`` for cheap polling."""

    def __init__(self, store: Store, keep: int, key: str = MODEL_KEY) -> None:
        super().__init__(store, key, keep)

    @property
    def where(self) -> str:
        return f"the store's {self.key}"

    async def _read(self) -> bytes | None:
        return await self.aux.get(self.key)

    async def _replace(self, expected: bytes | None, blob: bytes) -> bool:
        if not await self.aux.compare_and_set(self.key, expected, blob, STORE_TTL):
            return False
        await self.aux.set(f"{self.key}:version", str(blob_version(blob)).encode(), STORE_TTL)
        return True


class FileHome(ModelHome):
    """File mode: the model file itself; versions and ledger beside it."""

    def __init__(self, path: str | Path, keep: int) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        aux = SqliteStore(str(self.path.with_name(self.path.name + ".feedback.db")))
        super().__init__(aux, MODEL_KEY, keep)

    @property
    def where(self) -> str:
        return str(self.path)

    async def close(self) -> None:
        await self.aux.close()

    async def _read(self) -> bytes | None:
        return await asyncio.to_thread(self._read_sync)

    def _read_sync(self) -> bytes | None:
        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            return None

    async def _replace(self, expected: bytes | None, blob: bytes) -> bool:
        return await asyncio.to_thread(self._replace_sync, expected, blob)

    def _replace_sync(self, expected: bytes | None, blob: bytes) -> bool:
        with self._locked():
            if blob_version(self._read_sync()) != blob_version(expected):
                return False
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            try:
                with open(tmp, "wb") as handle:
                    handle.write(blob)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.chmod(tmp, 0o644)
                os.replace(tmp, self.path)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
        return True

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


def file_version(path: str | Path) -> int | None:
    """The version in a model file's header (reads the header only), None
    when there is no readable model file."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(len(MAGIC) + 4)
            length = int.from_bytes(head[len(MAGIC) :], "big") if len(head) == len(MAGIC) + 4 else 0
            data = head + handle.read(length)
        return blob_version(data)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def home_for(config: Any, store: Store | None, model_path: str | None = None) -> ModelHome:
    """The model's home for ``config``: ``model_path`` (or the configured
    ``classifier.model_path``) when set, else the store (ValueError if None)."""
    keep = int(config.classifier.model_versions)
    path = model_path if model_path is not None else config.classifier.model_path
    if path:
        return FileHome(path, keep)
    if store is None:
        raise ValueError("no classifier.model_path and no store to keep the model in")
    return StoreHome(store, keep)
