"""Maildir delivery that is safe to answer ``250`` after.

Contract: ``MaildirWriter.deliver(message)`` writes the bytes to ``tmp/``,
fsyncs the file, renames it into ``new/`` and fsyncs the directory, then
returns the file name. Any failure raises ``OSError`` and leaves no partial
file in ``new/``; the caller answers 451. The blocking work runs in a worker
thread so a slow disk does not stall other sessions.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import time
from pathlib import Path

_counter = itertools.count()


class MaildirWriter:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        for sub in ("tmp", "new", "cur"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self._host = socket.gethostname().replace("/", "\\057").replace(":", "\\072")

    def _unique_name(self) -> str:
        now = time.time()
        seconds = int(now)
        micros = int((now - seconds) * 1_000_000)
        return f"{seconds}.M{micros:06d}P{os.getpid()}Q{next(_counter)}.{self._host}"

    def deliver_sync(self, message: bytes) -> str:
        name = self._unique_name()
        tmp_path = self.root / "tmp" / name
        new_path = self.root / "new" / name
        fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            view = memoryview(message)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            tmp_path.unlink(missing_ok=True)
            raise
        os.close(fd)
        try:
            os.rename(tmp_path, new_path)
        except BaseException:
            tmp_path.unlink(missing_ok=True)
            raise
        dir_fd = os.open(self.root / "new", os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return name

    async def deliver(self, message: bytes) -> str:
        return await asyncio.to_thread(self.deliver_sync, message)
