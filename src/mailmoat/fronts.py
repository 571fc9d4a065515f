"""What the non-SMTP fronts (milter, policy) share: the listening part.

They run on ``mailmoat.runtime.Runtime`` as ``mailmoat serve`` does (the
same services, pipeline, statistics, model sync and autolearn; reload and
shutdown through it); sessions read ``runtime.pipeline`` per command, so a
reload applies to the next one. Records come from
``mailmoat.core.record.record_for``, as for the SMTP front.
``serve_until_signalled`` runs an ``asyncio.Server`` until
SIGTERM/SIGINT; SIGHUP calls its ``on_reload``.

``FrontServer`` is the listening part both fronts share: ``start()`` binds
the front's ``listen`` setting and runs ``handle`` once per connection as a
task kept in ``sessions``; ``stop(grace)`` stops listening, waits up to
``grace`` seconds for the sessions and cancels the rest. ``run_front`` is
the body of the ``mailmoat milter`` / ``mailmoat policy`` commands.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Callable
from dataclasses import replace
from typing import ClassVar

from mailmoat.config import Config, ConfigError, load_runtime_config, parse_hostport
from mailmoat.core.errors import describe
from mailmoat.logs import configure as configure_logging
from mailmoat.process import bind_socket, drop_privileges, dropping
from mailmoat.runtime import Runtime, freeze_heap

log = logging.getLogger("mailmoat.front")


async def serve_until_signalled(
    server: asyncio.Server, name: str, on_reload: Callable[[], None] | None = None
) -> None:
    """Serve until SIGTERM/SIGINT, then stop listening and let sessions end;
    SIGHUP calls ``on_reload`` (without one it is logged and ignored)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(
        signal.SIGHUP, on_reload or (lambda: log.info("%s: SIGHUP ignored", name))
    )
    for sock in server.sockets:
        host, port = sock.getsockname()[:2]
        log.info("%s listening on %s:%s", name, host, port)
    await stop.wait()
    log.info("%s shutting down", name)
    server.close()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(server.wait_closed(), 10)


class FrontServer:
    """An ``asyncio`` server running one session task per connection."""

    name: ClassVar[str]  # the config section ([milter], [policy]) and log name
    default_port: ClassVar[int]
    stop_grace: ClassVar[float] = 10.0
    stream_limit: ClassVar[int] = 64 * 1024  # asyncio's default

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.server: asyncio.Server | None = None
        self.sessions: set[asyncio.Task[None]] = set()

    def listen(self) -> str:
        """The ``host:port`` setting to bind."""
        raise NotImplementedError

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Run one connection's session."""
        raise NotImplementedError

    async def start(self, sock: socket.socket | None = None) -> tuple[str, int]:
        """Listen on the ``listen`` setting, or on ``sock`` (bound before
        dropping privileges)."""
        if sock is not None:
            self.server = await asyncio.start_server(
                self._accept, sock=sock, limit=self.stream_limit
            )
        else:
            host, port = parse_hostport(self.listen(), default_port=self.default_port)
            self.server = await asyncio.start_server(
                self._accept, host, port, reuse_address=True, limit=self.stream_limit
            )
        bound = self.server.sockets[0].getsockname()
        return str(bound[0]), int(bound[1])

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.sessions.add(task)
        try:
            # Cancelled by stop(): the task ends quietly (asyncio's stream
            # callback would log a cancelled connection task as an error).
            with contextlib.suppress(asyncio.CancelledError):
                await self.handle(reader, writer)
        finally:
            self.sessions.discard(task)

    async def stop(self, grace: float | None = None) -> None:
        if grace is None:
            grace = self.stop_grace
        if self.server is not None:
            self.server.close()
        if self.sessions:
            _done, pending = await asyncio.wait(set(self.sessions), timeout=grace)
            for task in pending:
                task.cancel()


def add_front_arguments(parser: argparse.ArgumentParser, section: str) -> None:
    parser.add_argument("--config", help="TOML config file (default: embedded defaults)")
    parser.add_argument("--listen", help=f"host:port to listen on (overrides [{section}] listen)")


async def run_front(
    server_class: type[FrontServer], config_path: str | None, listen: str | None
) -> int:
    """Open the runtime, serve ``server_class`` until SIGTERM/SIGINT, close."""
    section = server_class.name

    def read_config() -> Config:
        config = load_runtime_config(config_path)
        if listen:
            settings = getattr(config, section)
            config = replace(config, **{section: replace(settings, listen=listen)})
            parse_hostport(listen, where="--listen")
        return config

    config = read_config()
    configure_logging(config.log)
    sock: socket.socket | None = None
    if dropping(config.process):  # bound as root; all else opened as the user
        address = getattr(config, section).listen
        try:
            sock = bind_socket(*parse_hostport(address, default_port=server_class.default_port))
        except OSError as exc:
            raise ConfigError(
                f"{config.source}: {section}.listen: cannot listen on {address!r}: "
                f"{exc.strerror or exc}"
            ) from exc
        drop_privileges(config)
    runtime = await Runtime.open(config, section, config_path=config_path)
    freeze_heap()  # what was built lives as long as the process (see mailmoat.runtime)
    server = server_class(runtime)

    def reload() -> None:
        if config_path is None:
            log.info("%s reload: no config file, keeping embedded defaults", section)
            return
        try:
            runtime.reload(read_config())
        except Exception as exc:  # any failure keeps the old runtime
            log.error("%s reload failed, keeping the running config: %s", section, describe(exc))
            return
        log.info("%s reloaded config from %s", section, config_path)

    try:
        try:
            await server.start(sock)
        except OSError as exc:
            raise ConfigError(
                f"{config.source}: {section}.listen: cannot listen on "
                f"{server.listen()!r}: {exc.strerror or exc}"
            ) from exc
        assert server.server is not None
        await serve_until_signalled(server.server, section, reload)
        await server.stop()
    finally:
        await runtime.close()
    return 0
