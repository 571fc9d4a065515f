"""The quarantine: messages kept aside instead of delivered.

Contract: ``Quarantine.put`` stores the message and its envelope durably
(fsynced files, like the Maildir delivery) before the client hears ``250``;
``list``/``get`` read them back, ``delete`` drops one and ``expire`` drops
those older than the retention; ``envelope(tx)`` is what is kept beside a
message. Releasing is ``mailmoat.delivery.release``.
Files rather than store records: a quarantined message was promised to the
sender, so it must survive a crash as a delivered one would.

Quarantined mail is private: the directory and its ``tmp``/``new``/``cur``
are made (or tightened to) 0700, message and envelope files 0600. A message
id is a Maildir file name; anything else (a path, a NUL byte, a dot file,
the ``.json`` envelope's own name) names no message: ``get`` returns None and
``delete`` False, never an exception. ``delete`` removes the envelope and the
message together; ``expire`` also removes message files left without an
envelope (a crash between the two unlinks) once older than the retention.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import stat
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from mailmoat.core.headers import decoded
from mailmoat.core.transaction import Transaction
from mailmoat.delivery.maildir import MaildirWriter

log = logging.getLogger("mailmoat.quarantine")
_META = ".json"


def valid_id(message_id: str) -> bool:
    """True when ``message_id`` can be a quarantined message's file name."""
    return (
        bool(message_id)
        and not message_id.startswith(".")
        and not message_id.endswith(_META)
        and not any(c in message_id for c in "/\x00")
        and len(message_id) <= 255
    )


def make_private_dir(path: Path) -> None:
    """Create ``path`` (and parents) as 0700, or tighten it to 0700."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            os.chmod(path, 0o700)
    except OSError as exc:
        log.warning("quarantine: cannot make %s private (%s)", path, exc)


@dataclass(frozen=True)
class QuarantinedMessage:
    id: str
    queue_id: str
    mail_from: str
    rcpts: list[str]
    client_ip: str
    subject: str
    score: float
    symbols: dict[str, float]
    time: float
    size: int


class Quarantine:
    def __init__(self, directory: str | Path, retention_days: int = 30) -> None:
        self.root = Path(directory)
        self.retention = retention_days * 86_400
        for sub in ("", "tmp", "new", "cur"):
            make_private_dir(self.root / sub)
        self._writer = MaildirWriter(self.root)

    def _meta_path(self, message_id: str) -> Path:
        return self.root / "new" / f"{message_id}{_META}"

    async def put(self, message: bytes, meta: dict[str, object]) -> str:
        return await asyncio.to_thread(self._put_sync, message, meta)

    def _put_sync(self, message: bytes, meta: dict[str, object]) -> str:
        # The envelope goes in first (to tmp, fsynced), then the message;
        # ``list`` only shows messages whose envelope is complete.
        name = self._writer.deliver_sync(message)
        record = {**meta, "id": name, "time": time.time(), "size": len(message)}
        tmp = self.root / "tmp" / f"{name}{_META}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(fd, "w", encoding="utf-8") as handle:
            json.dump(record, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.rename(tmp, self._meta_path(name))
        return name

    def list(self) -> list[QuarantinedMessage]:
        items = []
        for meta_path in (self.root / "new").glob("*.json"):
            item = self._load(meta_path)
            if item is not None:
                items.append(item)
        return sorted(items, key=lambda m: m.time, reverse=True)

    def _load(self, meta_path: Path) -> QuarantinedMessage | None:
        try:
            data = json.loads(meta_path.read_text(encoding="utf-8"))
            fields = QuarantinedMessage.__dataclass_fields__
            return QuarantinedMessage(**{k: data.get(k) for k in fields})  # type: ignore[arg-type]
        except (OSError, ValueError, TypeError):
            return None

    def get(self, message_id: str) -> tuple[QuarantinedMessage, bytes] | None:
        if not valid_id(message_id):
            return None
        meta = self._load(self._meta_path(message_id))
        if meta is None:
            return None
        try:
            return meta, (self.root / "new" / message_id).read_bytes()
        except OSError:
            return None

    def delete(self, message_id: str) -> bool:
        """Remove a quarantined message: its envelope, then its body. False
        when ``message_id`` names none (the body alone is not a message)."""
        if not valid_id(message_id):
            return False
        try:
            self._meta_path(message_id).unlink()
        except FileNotFoundError:
            return False
        (self.root / "new" / message_id).unlink(missing_ok=True)
        return True

    def expire(self, now: float | None = None) -> int:
        cutoff = (now or time.time()) - self.retention
        gone = 0
        for item in self.list():
            if item.time < cutoff and self.delete(item.id):
                gone += 1
        self._sweep_orphans(cutoff)
        return gone

    def _sweep_orphans(self, cutoff: float) -> None:
        """Message files without an envelope, older than ``cutoff``."""
        for path in (self.root / "new").iterdir():
            if path.name.endswith(_META) or self._meta_path(path.name).exists():
                continue
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    log.info("quarantine: removed %s, a message file without envelope", path.name)
            except OSError:
                pass


def envelope(tx: Transaction) -> dict[str, object]:
    """What ``put`` keeps beside a message of ``tx`` (the dashboard's list)."""
    return {
        "queue_id": tx.queue_id,
        "mail_from": tx.mail_from,
        "rcpts": list(tx.rcpts),
        "client_ip": tx.session.client_ip,
        "subject": decoded(tx.headers.get("Subject"))[:500],
        "score": tx.score,
        "symbols": {s.name: s.score for s in tx.all_symbols},
    }


def as_dict(item: QuarantinedMessage) -> dict[str, object]:
    return asdict(item)
