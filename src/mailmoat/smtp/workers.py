"""Several gateway processes sharing one listening socket (prefork).

Python runs one core per process; Postfix, the peer we measure against,
spreads its work over many processes too. With ``smtp.workers`` above one,
``mailmoat serve`` binds the socket once, forks that many workers that each
accept from it with their own event loop, and supervises them:

- SIGTERM/SIGINT are passed on to every worker (each finishes its
  transactions in flight, see ``Gateway.stop``); the supervisor exits when
  they all have.
- SIGHUP is passed on: each worker reloads its configuration.
- A worker that dies unexpectedly is logged and started again (at most once
  a second), so one crash never takes the gateway down.

Contract: ``bind_listener`` returns a bound, listening socket or raises
OSError; ``supervise`` returns the exit status once all workers are gone.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import time
from collections.abc import Callable

from mailmoat.config import parse_hostport

log = logging.getLogger("mailmoat.workers")

WorkerMain = Callable[[int, socket.socket], int]


_early_reload = False


def _remember_reload(_signum: int, _frame: object) -> None:
    global _early_reload
    _early_reload = True


def reload_requested() -> bool:
    """Whether SIGHUP came before the worker could handle it (then clear it)."""
    global _early_reload
    requested, _early_reload = _early_reload, False
    return requested


def _end_with_parent() -> None:
    """Ask Linux to send this worker SIGTERM if the supervisor dies (even by
    SIGKILL), so no orphaned worker keeps the listening socket. Best effort:
    elsewhere a worker outlives a killed supervisor."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        log.debug("prctl(PR_SET_PDEATHSIG) unavailable")


PR_SET_PDEATHSIG = 1


def bind_listener(listen: str) -> socket.socket:
    host, port = parse_hostport(listen)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(4096)
    sock.setblocking(False)
    return sock


def worker_count(configured: int) -> int:
    return configured if configured > 0 else max(1, os.cpu_count() or 1)


def supervise(count: int, sock: socket.socket, worker_main: WorkerMain) -> int:
    children: dict[int, int] = {}
    stopping = False
    last_start: dict[int, float] = {}

    def start(index: int) -> None:
        wait = last_start.get(index, 0.0) + 1.0 - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        last_start[index] = time.monotonic()
        pid = os.fork()
        if pid == 0:
            _end_with_parent()
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, signal.SIG_DFL)
            # Until the worker's loop takes SIGHUP over, remember the request;
            # the worker reloads once it is up (see ``reload_requested``).
            signal.signal(signal.SIGHUP, _remember_reload)
            code = 1
            try:
                code = worker_main(index, sock)
            except BaseException:
                log.exception("worker %d failed", index)
            finally:
                logging.shutdown()
                os._exit(code)
        children[pid] = index

    def forward(signum: int, _frame: object) -> None:
        nonlocal stopping
        if signum in (signal.SIGTERM, signal.SIGINT):
            stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    for index in range(count):
        start(index)
    log.info("supervising %d workers on %s", count, sock.getsockname())
    status = 0
    while children:
        try:
            pid, raw = os.wait()
        except ChildProcessError:
            break
        if pid not in children:
            continue
        index = children.pop(pid)
        code = os.waitstatus_to_exitcode(raw)
        if stopping:
            status = status or (code if code > 0 else 0)
            continue
        log.error("worker %d (pid %d) ended unexpectedly (status %d); starting it again",
                  index, pid, code)  # fmt: skip
        start(index)
    sock.close()
    return status
