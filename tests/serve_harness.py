"""Run a ``mailmoat`` command (``serve``, ``milter``, ``policy``) as a real process.

``MailmoatProcess(directory, "serve", port)`` owns ``directory/mailmoat.toml``
(the test writes it) and, once ``start()``-ed, a child running
``python -m mailmoat serve --config directory/mailmoat.toml`` in
``directory`` with its output in ``directory/serve.log``. ``start`` returns
when the port accepts and ``listening on`` is logged once per worker;
``hangup`` sends SIGHUP and waits for the reload's log lines; ``stop``
terminates it (SIGKILL after 20 s) and may be called at any time, also before
``start``; leaving a ``with`` block on the process calls it, and fails when a
transaction line of the output does not parse (``log_guard``). A start or a
wait that fails raises ``AssertionError`` carrying the process's output.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import BinaryIO, Self

from log_guard import unparsed_transaction_lines
from servers import tcp_listening


class MailmoatProcess:
    def __init__(self, directory: Path, command: str, port: int) -> None:
        self.directory = directory
        self.command = command
        self.port = port
        self.config_path = directory / "mailmoat.toml"
        self.log_path = directory / f"{command}.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: BinaryIO | None = None

    @property
    def proc(self) -> subprocess.Popen[bytes]:
        assert self._proc is not None, f"mailmoat {self.command} was not started"
        return self._proc

    def start(self, listeners: int = 1, timeout: float = 20) -> Self:
        """Start the process; return once ``listening on`` is logged
        ``listeners`` times (0: not waited for) and the port accepts."""
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed by stop()
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "mailmoat", self.command, "--config", str(self.config_path)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=self.directory,
        )
        try:
            self.wait_for_log("listening on", listeners, "start", timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def wait_for_log(self, text: str, count: int, what: str, timeout: float = 20) -> None:
        """Until ``text`` is logged ``count`` times and the port accepts;
        ``AssertionError`` saying it did not ``what`` when the process ends
        or ``timeout`` seconds pass first."""
        deadline = time.monotonic() + timeout
        while self.output().count(text) < count or not tcp_listening(self.port):
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"mailmoat {self.command} ended and did not {what}:\n{self.output()}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"mailmoat {self.command} did not {what} in {timeout:g} s:\n{self.output()}"
                )
            time.sleep(0.05)

    def hangup(self, text: str, times: int = 1, timeout: float = 20) -> None:
        """SIGHUP, then wait until ``text`` is logged ``times`` more times."""
        before = self.output().count(text)
        os.kill(self.proc.pid, signal.SIGHUP)
        self.wait_for_log(text, before + times, f"log {text!r}", timeout)

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()  # serve's supervisor stops its workers
            try:
                self._proc.wait(20)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(10)
        if self._log is not None:
            self._log.close()
            self._log = None
            unparsed = unparsed_transaction_lines(self.output())
            assert not unparsed, f"transaction lines docs/logging.md cannot parse: {unparsed[:3]}"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
