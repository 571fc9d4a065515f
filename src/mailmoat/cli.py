"""Command-line entry point: ``mailmoat <command> [options]``.

Each command lives in ``mailmoat.commands.<name>`` and exposes
``add_arguments(parser)`` and ``run(args) -> int``; its one-line help is in
``COMMANDS`` here, so ``mailmoat --help`` imports no command module.
Commands are imported only when chosen, so ``mailmoat scan`` does not pay
for the web stack. A configuration problem exits 2 with one line per problem
(``ConfigError.problems``), a store that cannot be used exits 1 with one
line; neither shows a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from mailmoat import installed_version
from mailmoat.config import ConfigError
from mailmoat.store.base import StoreError

COMMANDS: dict[str, str] = {
    "serve": "run the SMTP gateway (and its dashboard)",
    "scan": "run the data-stage checks on stored messages",
    "config": "show, check or document the configuration",
    "symbols": "list every symbol with its check, scores and description",
    "rules": "show what the rules engine loaded and skipped (--stats)",
    "stats": "print a summary of the statistics",
    "web": "serve the web dashboard alone, or make a password hash",
    "milter": "run the Sendmail/Postfix milter front",
    "policy": "run the Postfix policy delegation front",
    "learn": "learn spam and ham messages into the classifier model",
    "eval": "measure the classifier on a labelled index (TREC format)",
    "report": "RFC 5965 abuse reports of quarantined or refused messages",
    "zone": "export the worst sources as a DNSBL zone (rbldnsd, bind)",
    "model": "list the classifier model's kept versions, or roll back to one",
}


def build_parser(chosen: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mailmoat", description="Anti-spam SMTP gateway.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--version", action="version", version=f"mailmoat {installed_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, help_text in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            module = importlib.import_module(f"mailmoat.commands.{name}")
            module.add_arguments(command_parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    chosen = next((a for a in args_list if a in COMMANDS), None)
    args = build_parser(chosen).parse_args(args_list)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    module = importlib.import_module(f"mailmoat.commands.{args.command}")
    try:
        return int(module.run(args))
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"mailmoat: configuration error: {problem}", file=sys.stderr)
        return 2
    except StoreError as exc:
        print(f"mailmoat: store error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
