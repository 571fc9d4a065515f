"""Run a real mailmoat gateway in a background thread for integration tests.

``GatewayThread(tmp_path, {"relay": {"domains": [...]}})`` writes a TOML
config (merged over test defaults: free port, pregreet off, everything under
``tmp_path``), starts ``Gateway`` on its own event loop in a thread, and
exposes ``port``, ``maildir_messages()`` and ``stop()``. Tests talk to it
with real clients (smtplib, swaks, smtp-source) from the main thread.
``start_gateway``/``stop_gateway`` are its start and stop sequence, also for
harnesses that run a ``Gateway`` in the test's own event loop.
``self_signed_certificate`` makes the certificate and key for STARTTLS tests.
"""

from __future__ import annotations

import asyncio
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from mailmoat.config import load_config
from mailmoat.runtime import Door, Runtime
from mailmoat.smtp.server import Gateway
from servers import require_binary

# The SMTP front and its pipeline without statistics, model sync, autolearn
# or dashboard; ``door="serve"`` has them all, as ``mailmoat serve``.
BARE_SERVE = Door("serve", background=False)


def toml_dumps(sections: dict[str, dict[str, Any]]) -> str:
    """Enough TOML for test configs: tables of strings, numbers, bools, lists."""

    def value(item: Any) -> str:
        if isinstance(item, bool):
            return "true" if item else "false"
        if isinstance(item, int | float):
            return repr(item)
        if isinstance(item, str):
            return '"' + item.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(item, list | tuple):
            return "[" + ", ".join(value(i) for i in item) + "]"
        raise TypeError(f"cannot write {item!r} as TOML")

    lines: list[str] = []
    for name, table in sections.items():
        plain = {k: v for k, v in table.items() if not isinstance(v, dict)}
        lines.append(f"[{name}]")
        lines.extend(f"{k} = {value(v)}" for k, v in plain.items())
        for key, sub in table.items():
            if isinstance(sub, dict):
                lines.append(f"[{name}.{key}]")
                lines.extend(f"{k} = {value(v)}" for k, v in sub.items())
    return "\n".join(lines) + "\n"


def write_test_config(tmp_path: Path, overrides: dict[str, dict[str, Any]] | None = None) -> Path:
    sections: dict[str, dict[str, Any]] = {
        "smtp": {"listen": "127.0.0.1:0", "hostname": "mx.mailmoat.test", "shutdown_grace": 5},
        "relay": {"domains": ["example.org"]},
        "delivery": {"maildir": str(tmp_path / "maildir")},
        "quarantine": {"directory": str(tmp_path / "quarantine")},
        "store": {"url": f"sqlite:///{tmp_path / 'store.db'}"},
        "pregreet": {"delay": 0},
        # Nothing answers on this loopback port: lookups fail fast, and no
        # query can leave the machine. Tests that need DNS override it.
        "dns": {"nameserver": "127.0.0.1:9", "timeout": 0.2},
    }
    for name, table in (overrides or {}).items():
        sections.setdefault(name, {}).update(table)
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "mailmoat.toml"
    path.write_text(toml_dumps(sections))
    return path


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """(certificate, key) for ``mx.mailmoat.test``, valid one day, written into
    ``directory`` by openssl (the test skips without it, fails under CI)."""
    openssl = require_binary("openssl")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=mx.mailmoat.test", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


async def start_gateway(gateway: Gateway) -> int:
    """Listen, as ``mailmoat serve`` does once its runtime is open; the port."""
    _host, port = await gateway.start()
    return port


async def stop_gateway(gateway: Gateway) -> None:
    """Stop listening, then close the runtime, as ``mailmoat serve``."""
    await gateway.stop()
    await gateway.runtime.close()


class GatewayThread:
    def __init__(
        self,
        tmp_path: Path,
        overrides: dict[str, dict[str, Any]] | None = None,
        *,
        loop_factory: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop,
        door: Door | str = BARE_SERVE,
    ) -> None:
        self.door = door
        self.config_path = write_test_config(tmp_path, overrides)
        self.config = load_config(self.config_path)
        # uvloop.new_event_loop runs it as ``mailmoat serve`` does.
        self.loop = loop_factory()
        self.gateway: Gateway | None = None
        self.port = 0
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._start())
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self.loop.run_forever()

    async def _start(self) -> None:
        runtime = await Runtime.open(self.config, self.door, config_path=str(self.config_path))
        self.gateway = Gateway(runtime)
        self.port = await start_gateway(self.gateway)

    def start(self) -> Self:
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise self._error
        return self

    def call(self, coroutine: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def stop(self) -> None:
        if self.gateway is not None and self.loop.is_running():
            gateway = self.gateway

            async def shutdown() -> None:
                await stop_gateway(gateway)
                current = asyncio.current_task()
                leftovers = [t for t in asyncio.all_tasks() if t is not current]
                for task in leftovers:
                    task.cancel()
                await asyncio.gather(*leftovers, return_exceptions=True)

            self.call(shutdown(), timeout=60)
            self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)

    def maildir_messages(self) -> list[bytes]:
        new = Path(self.config.delivery.maildir) / "new"
        return [p.read_bytes() for p in sorted(new.iterdir())] if new.exists() else []

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
