"""The quarantine: messages kept aside instead of delivered.

Contract: ``Quarantine.put`` stores the message and its envelope durably
(fsynced files, like the Maildir delivery) before the client hears ``250``;
``list``/``get`` read them back, ``delete`` drops one and ``expire`` drops
those older than the retention. Releasing (delivering) a message is the
caller's job: it reads ``get`` and hands the bytes to the delivery path.
Files rather than store records: a quarantined message was promised to the
sender, so it must survive a crash as a delivered one would.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from mailmoat.smtp.maildir import MaildirWriter


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
        self._writer = MaildirWriter(self.root)

    def _meta_path(self, message_id: str) -> Path:
        return self.root / "new" / f"{message_id}.json"

    async def put(self, message: bytes, meta: dict[str, object]) -> str:
        return await asyncio.to_thread(self._put_sync, message, meta)

    def _put_sync(self, message: bytes, meta: dict[str, object]) -> str:
        # The envelope goes in first (to tmp, fsynced), then the message;
        # ``list`` only shows messages whose envelope is complete.
        name = self._writer.deliver_sync(message)
        record = {**meta, "id": name, "time": time.time(), "size": len(message)}
        tmp = self.root / "tmp" / f"{name}.json"
        with open(tmp, "w", encoding="utf-8") as handle:
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
        if "/" in message_id or message_id.startswith("."):
            return None
        meta = self._load(self._meta_path(message_id))
        if meta is None:
            return None
        try:
            return meta, (self.root / "new" / message_id).read_bytes()
        except OSError:
            return None

    def delete(self, message_id: str) -> bool:
        if "/" in message_id or message_id.startswith("."):
            return False
        found = False
        for path in (self.root / "new" / message_id, self._meta_path(message_id)):
            try:
                path.unlink()
                found = True
            except FileNotFoundError:
                pass
        return found

    def expire(self, now: float | None = None) -> int:
        cutoff = (now or time.time()) - self.retention
        gone = 0
        for item in self.list():
            if item.time < cutoff and self.delete(item.id):
                gone += 1
        return gone


def as_dict(item: QuarantinedMessage) -> dict[str, object]:
    return asdict(item)
