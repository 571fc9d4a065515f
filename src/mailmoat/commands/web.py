"""``mailmoat web``: the dashboard alone; ``mailmoat web --hash-password``.

Serves the dashboard on ``web.listen`` against the configured store and
quarantine, without a gateway (``mailmoat serve`` also serves it). Refuses
to start on a non-loopback address without ``web.password_hash``.
``--hash-password`` reads a password (prompted twice on a terminal, else one
line from stdin) and prints the ``scrypt$...`` value for ``web.password_hash``.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import signal
import sys

from mailmoat.config import load_config
from mailmoat.runtime import Runtime, run_loop

log = logging.getLogger("mailmoat.web")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="TOML config file (default: embedded defaults)")
    parser.add_argument(
        "--hash-password", action="store_true", help="print a hash for web.password_hash"
    )


def read_password() -> str | None:
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if first != getpass.getpass("Again: "):
            print("mailmoat web: passwords differ", file=sys.stderr)
            return None
        return first
    return sys.stdin.readline().rstrip("\r\n")


async def serve_dashboard(config_path: str | None) -> int:
    from mailmoat.web.auth import check_bind

    config = load_config(config_path)
    check_bind(config.web)
    runtime = await Runtime.open(config, "web", config_path=config_path)
    server = runtime.dashboard
    if server is None:
        await runtime.close()
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    print(f"dashboard: http://{server.address}/", flush=True)
    await stop.wait()
    await runtime.close()
    return 0


def run(args: argparse.Namespace) -> int:
    if args.hash_password:
        from mailmoat.web.auth import hash_password

        password = read_password()
        if not password:
            print("mailmoat web: empty password", file=sys.stderr)
            return 2
        print(hash_password(password))
        return 0
    return run_loop(serve_dashboard(args.config))
