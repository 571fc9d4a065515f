"""Running the dashboard: uvicorn inside the gateway's event loop.

Contract: ``start_dashboard(config_getter, store, ...)`` checks the binding
(``auth.check_bind``: ``ConfigError`` when unsafe), builds the app and
serves it with uvicorn on ``web.listen`` in the running event loop, without
touching the process's signal handlers (``mailmoat serve`` owns them). It
returns a ``WebServer`` whose ``stop()`` ends it, or None when the address
cannot be bound (logged; the gateway keeps running). No access log: URLs
carry search terms, never secrets, but the log stays quiet anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Iterator

import uvicorn

from mailmoat.classify.holder import ModelHolder
from mailmoat.config import Config
from mailmoat.stats.recorder import StatsRecorder
from mailmoat.store.base import Store
from mailmoat.web.app import Dashboard, create_app
from mailmoat.web.auth import Sessions, check_bind

log = logging.getLogger("mailmoat.web")


class _QuietServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class WebServer:
    def __init__(self, server: uvicorn.Server, task: asyncio.Task[None], address: str) -> None:
        self.server = server
        self.task = task
        self.address = address

    @property
    def port(self) -> int:
        return int(self.address.rsplit(":", 1)[1])

    async def stop(self) -> None:
        self.server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(self.task, 10)


def make_dashboard(
    config: Callable[[], Config],
    store: Store,
    *,
    recorder: StatsRecorder | None = None,
    model: ModelHolder | None = None,
) -> Dashboard:
    current = config()
    web = current.web
    sessions = Sessions(web.secret_key, web.session_hours * 3600, web.password_hash)
    return Dashboard(config, store, current.node, sessions, recorder, model=model)


async def start_dashboard(
    config: Callable[[], Config],
    store: Store,
    *,
    recorder: StatsRecorder | None = None,
    model: ModelHolder | None = None,
) -> WebServer | None:
    host, port = check_bind(config().web)
    app = create_app(make_dashboard(config, store, recorder=recorder, model=model))
    settings = uvicorn.Config(
        app, host=host, port=port, log_level="warning", access_log=False, lifespan="off"
    )
    try:
        sock = _listen(host, port)
    except OSError as exc:
        log.error("dashboard: cannot listen on %s:%s (%s); running without it", host, port, exc)
        return None
    server = _QuietServer(settings)
    task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
    while not server.started and not task.done():
        await asyncio.sleep(0.01)
    bound = sock.getsockname()
    log.info("dashboard listening on http://%s:%s/", host, bound[1])
    if host in ("0.0.0.0", "::") and not config().web.allowed_hosts:
        log.warning(
            "dashboard: web.allowed_hosts is empty, so only requests to localhost or a "
            "loopback address are answered (others get 400); list the names and addresses "
            "the dashboard is reached by there"
        )
    return WebServer(server, task, f"{host}:{bound[1]}")


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
        sock.set_inheritable(True)
    except OSError:
        sock.close()
        raise
    return sock
