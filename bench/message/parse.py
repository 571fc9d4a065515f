"""Parsing and URL extraction alone: CPU microseconds per corpus message.

Per message, what the data stage does before any content check reads the
result: the header block parse (``Transaction.headers``), ``parse_message``
reusing it, and the host list the URL blocklist check builds
(``urlbl.message_hosts``). The corpus is read as ``run.py`` reads it (line
ends made CRLF, as on the wire). Each round parses every message once and
is timed with ``time.process_time`` (CPU only: the box is shared).

    .venv/bin/python bench/message/parse.py [--limit N] [--rounds 3]

Prints the CPU per message of each round and their minimum. Run a base
tree side by side with ``PYTHONPATH=<base>/src`` (only long-standing APIs
are used), alternating, and compare the minima.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pipeline"))

from run import load_corpus

import mailmoat
from mailmoat.checks.urlbl import message_hosts
from mailmoat.core.headers import parse_header_block
from mailmoat.message import parse_message


def one_round(messages: list[bytes]) -> float:
    """CPU seconds to parse every message once."""
    start = time.process_time()
    for raw in messages:
        parsed = parse_message(raw, head=parse_header_block(raw))
        message_hosts(list(parsed.urls), list(parsed.domains))
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--limit", type=int, default=100000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    messages = load_corpus(args.limit)
    print(f"{mailmoat.__file__}: {len(messages)} messages", file=sys.stderr)
    one_round(messages[:200])  # warm caches (charsets, regexes)
    figures = [one_round(messages) / len(messages) * 1e6 for _ in range(args.rounds)]
    rounds = " ".join(f"{figure:.0f}" for figure in figures)
    print(f"parse+urls: {rounds} us CPU per message (min {min(figures):.0f})")


if __name__ == "__main__":
    main()
