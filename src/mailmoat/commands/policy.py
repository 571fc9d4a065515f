"""``mailmoat policy``: serve Postfix policy delegation until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse

from mailmoat.fronts import add_front_arguments, run_front
from mailmoat.policy.server import PolicyServer
from mailmoat.runtime import run_loop


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_front_arguments(parser, PolicyServer.name)


async def main(config_path: str | None, listen: str | None) -> int:
    return await run_front(PolicyServer, config_path, listen)


def run(args: argparse.Namespace) -> int:
    return run_loop(main(args.config, args.listen))
