"""``mailmoat policy``: serve Postfix policy delegation until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import logging

from mailmoat.config import load_config
from mailmoat.fronts import FrontRuntime, serve_until_signalled
from mailmoat.policy.server import PolicyServer
from mailmoat.runtime import run_loop

HELP = "run the Postfix policy delegation front"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="TOML config file (default: embedded defaults)")
    parser.add_argument("--listen", help="host:port to listen on (overrides [policy] listen)")


async def main(config_path: str | None, listen: str | None) -> int:
    config = load_config(config_path)
    if listen:
        from dataclasses import replace

        config = replace(config, policy=replace(config.policy, listen=listen))
    logging.getLogger().setLevel(config.log.level.upper())
    runtime = await FrontRuntime.open(config)
    server = PolicyServer(runtime)
    try:
        await server.start()
        assert server.server is not None
        await serve_until_signalled(server.server, "policy")
        await server.stop()
    finally:
        await runtime.close()
    return 0


def run(args: argparse.Namespace) -> int:
    return run_loop(main(args.config, args.listen))
