"""``mailmoat serve``: run the gateway until SIGTERM/SIGINT; SIGHUP reloads.

With ``smtp.workers`` other than 1 the socket is bound here and shared by
forked workers (``mailmoat.smtp.workers``); worker 0 is the primary: it also
serves the dashboard and does the periodic store upkeep. Started as root
with ``[process] user``, the listener is bound first and the privileges are
dropped before anything else opens (``mailmoat.process``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import socket

from mailmoat.config import ConfigError, load_config, load_runtime_config
from mailmoat.logs import configure as configure_logging
from mailmoat.process import drop_privileges, dropping
from mailmoat.rules.sources import load_configured
from mailmoat.runtime import Runtime, freeze_heap, run_loop
from mailmoat.smtp.server import Gateway
from mailmoat.smtp.workers import bind_listener, reload_requested, supervise, worker_count

log = logging.getLogger("mailmoat.serve")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="TOML config file (default: embedded defaults)")


async def serve(config_path: str | None, sock: socket.socket | None = None, index: int = 0) -> int:
    config = load_config(config_path)
    configure_logging(config.log)
    runtime = await Runtime.open(config, "serve", config_path=config_path, primary=index == 0)
    freeze_heap()  # what was built lives as long as the process (see mailmoat.runtime)
    gateway = Gateway(runtime)
    try:
        await gateway.start(sock)
    except OSError as exc:
        await runtime.close()
        raise listen_error(config.source, config.smtp.listen, exc) from exc
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, gateway.reload)
    if reload_requested():
        gateway.reload()
    upkeep = loop.create_task(_upkeep(gateway)) if index == 0 else None
    await stop.wait()
    log.info("shutting down")
    if upkeep is not None:
        upkeep.cancel()
    await gateway.stop()
    await runtime.close()
    return 0


async def _upkeep(gateway: Gateway) -> None:
    """Drop expired store keys and quarantined messages now and then."""
    while True:
        await asyncio.sleep(300)
        with contextlib.suppress(Exception):
            if gateway.services.store is not None:
                await gateway.services.store.purge()
            gateway.quarantine.expire()


def listen_error(source: str, listen: str, exc: OSError) -> ConfigError:
    """An address in use (or not ours) is a config problem, not a traceback."""
    return ConfigError(f"{source}: smtp.listen: cannot listen on {listen!r}: {exc.strerror or exc}")


def run(args: argparse.Namespace) -> int:
    # The same validation as ``mailmoat config --check``, before anything starts.
    config = load_runtime_config(args.config)
    count = worker_count(config.smtp.workers)
    if count == 1 and not dropping(config.process):
        drop_privileges(config)  # not root: only says an account is ignored
        return run_loop(serve(args.config))
    configure_logging(config.log)
    try:
        sock = bind_listener(config.smtp.listen)
    except OSError as exc:
        raise listen_error(config.source, config.smtp.listen, exc) from exc
    # Started as root: the listener is bound, nothing else is open yet.
    drop_privileges(config)
    if count == 1:
        return run_loop(serve(args.config, sock))
    # Loaded once here, before the workers fork: each finds the rule set ready
    # (the rules load takes seconds, and workers loading it at once double that).
    load_configured(config.rules)
    freeze_heap()  # the workers' collections leave the rule set (and its pages) alone
    return supervise(count, sock, lambda index, shared: run_loop(serve(args.config, shared, index)))
