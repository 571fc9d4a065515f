"""Model persistence: a compact binary format, files, and the shared Store.

Contract: ``dumps(model)`` gives bytes that ``loads`` turns back into an
equal model (weights rounded to float16); the same model always gives the
same bytes. ``loads`` raises ``ModelFormatError`` on anything else. Files are
written atomically (temporary file, then rename).

Format: ``MMCLS1`` magic, a 4-byte big-endian length, that many bytes of
JSON (feature config, bias, calibration, learning settings, counters,
version), then zlib-compressed arrays: the non-zero weight count (uint32),
the byte width of the index gaps (uint8: 1, 2 or 4), the gaps between
successive non-zero indices and their values (float16), all little-endian.
Hashed weights are sparse, so this is a fraction of the dense array.

Store sharing: ``save_to_store``/``load_from_store`` keep one model under one
key with a version counter inside the blob, mirrored in ``<key>:version`` for
cheap polling (``stored_version``). A save succeeds only if the stored
version is still the one the model was loaded as (compare-and-set), so two
gateways never silently overwrite each other's learning.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from mailmoat.classify.features import FeatureConfig
from mailmoat.classify.model import Model

MAGIC = b"MMCLS1"
# Every store key expires; a shared model should outlive any deployment.
STORE_TTL = 10 * 365 * 86400.0
# The key the gateway's shared model lives under (see mailmoat.cluster).
MODEL_KEY = "classifier_model"
_F16_MAX = 65000.0
_GAP_TYPES = {1: "<u1", 2: "<u2", 4: "<u4"}


class ModelFormatError(ValueError):
    """Bytes that are not a model in this format."""


class ModelConflictError(RuntimeError):
    """The stored model changed since this one was loaded."""


def dumps(model: Model, *, version: int | None = None) -> bytes:
    """Serialise ``model`` (with ``version`` in place of its own, if given)."""
    snapshot = model.copy()  # consistent even while another thread learns
    meta: dict[str, Any] = {
        "features": snapshot.features.to_dict(),
        "bias": snapshot.bias,
        "calibration": list(snapshot.calibration),
        "learning_rate": snapshot.learning_rate,
        "margin_threshold": snapshot.margin_threshold,
        "n_learned": snapshot.n_learned,
        "version": snapshot.version if version is None else version,
    }
    values16 = np.clip(snapshot.weights, -_F16_MAX, _F16_MAX).astype("<f2")
    indices = np.flatnonzero(values16).astype("<u4")
    gaps = np.diff(indices, prepend=np.uint32(0))
    width = 1 if len(gaps) == 0 or int(gaps.max()) < 256 else 2 if int(gaps.max()) < 65536 else 4
    payload = (
        struct.pack("<IB", len(indices), width)
        + gaps.astype(_GAP_TYPES[width]).tobytes()
        + values16[indices].tobytes()
    )
    header = json.dumps(meta, sort_keys=True).encode()
    # Level 6: level 9 is 20 times slower on the gap bytes for 5% less.
    return MAGIC + struct.pack(">I", len(header)) + header + zlib.compress(payload, 6)


def loads(data: bytes) -> Model:
    """Parse bytes from ``dumps``; ``ModelFormatError`` if they are not."""
    try:
        meta = _meta(data)
        start = len(MAGIC) + 4 + struct.unpack(">I", data[len(MAGIC) : len(MAGIC) + 4])[0]
        payload = zlib.decompress(data[start:])
        count, width = struct.unpack("<IB", payload[:5])
        gaps = np.frombuffer(payload, dtype=_GAP_TYPES[width], count=count, offset=5)
        values = np.frombuffer(payload, dtype="<f2", count=count, offset=5 + width * count)
        features = FeatureConfig.from_dict(meta["features"])
        weights = np.zeros(1 << features.hash_bits, dtype=np.float32)
        weights[np.cumsum(gaps, dtype=np.uint64)] = values.astype(np.float32)
        a, b = meta["calibration"]
        return Model(
            features,
            learning_rate=float(meta["learning_rate"]),
            margin_threshold=float(meta["margin_threshold"]),
            weights=weights,
            bias=float(meta["bias"]),
            calibration=(float(a), float(b)),
            n_learned=int(meta["n_learned"]),
            version=int(meta["version"]),
        )
    except ModelFormatError:
        raise
    except Exception as exc:  # struct, zlib, numpy, JSON and key errors alike
        raise ModelFormatError(f"not a mailmoat model: {exc}") from exc


def blob_version(data: bytes | None) -> int:
    """The version recorded in a serialised model (0 for None)."""
    return 0 if data is None else int(_meta(data)["version"])


def save_file(model: Model, path: str | Path) -> None:
    """Write ``model`` to ``path`` atomically."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".model-", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(dumps(model))
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_file(path: str | Path) -> Model:
    return loads(Path(path).read_bytes())


async def save_to_store(
    model: Model, store: Any, key: str = MODEL_KEY, ttl: float = STORE_TTL
) -> int:
    """Save ``model`` under ``key`` as the next version; returns that version.

    The blob is replaced by compare-and-set, then ``<key>:version`` is set to
    the new counter (a cheap key for pollers; the blob stays authoritative).
    Raises ``ModelConflictError`` when the stored version is not
    ``model.version`` (someone else saved since): reload, re-learn, retry.
    """
    current = await store.get(key)
    found = blob_version(current)
    if found != model.version:
        raise ModelConflictError(f"{key}: stored version {found}, model has {model.version}")
    version = model.version + 1
    if not await store.compare_and_set(key, current, dumps(model, version=version), ttl):
        raise ModelConflictError(f"{key}: changed while saving")
    await store.set(f"{key}:version", str(version).encode(), ttl)
    model.version = version
    return version


async def load_from_store(store: Any, key: str = MODEL_KEY) -> Model | None:
    """The model stored under ``key`` (its ``version`` set), None if absent."""
    data = await store.get(key)
    return None if data is None else loads(data)


async def stored_version(store: Any, key: str = MODEL_KEY) -> int | None:
    """The version counter of the shared model, None when there is none."""
    value = await store.get(f"{key}:version")
    try:
        return None if value is None else int(value)
    except ValueError:
        return None


def _meta(data: bytes) -> dict[str, Any]:
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 4:
        raise ModelFormatError("not a mailmoat model: bad magic")
    (length,) = struct.unpack(">I", data[len(MAGIC) : len(MAGIC) + 4])
    try:
        meta = json.loads(data[len(MAGIC) + 4 : len(MAGIC) + 4 + length])
    except ValueError as exc:
        raise ModelFormatError(f"not a mailmoat model: {exc}") from exc
    if not isinstance(meta, dict):
        raise ModelFormatError("not a mailmoat model: bad header")
    return meta
