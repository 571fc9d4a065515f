"""Every transaction line the test suite logs must parse with the documented regex.

A handler on the ``mailmoat.transaction`` logger (set to INFO for the whole
session) collects the lines; an autouse fixture fails the test that logged a
line ``mailmoat.logs.TRANSACTION_LINE`` (the regex of docs/logging.md) does
not match. Gateways run as subprocesses are checked by
``serve_harness.MailmoatProcess.stop`` with ``unparsed_transaction_lines``.
``LINES`` keeps every line seen (the doors test reads it).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from mailmoat.logs import TRANSACTION_LINE, TRANSACTION_LOGGER

LINES: list[str] = []
_MARK = f" {TRANSACTION_LOGGER} INFO "


class _Collector(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        LINES.append(record.getMessage())


_logger = logging.getLogger(TRANSACTION_LOGGER)
_logger.setLevel(logging.INFO)
_logger.addHandler(_Collector())


def unparsed_transaction_lines(output: str) -> list[str]:
    """The transaction lines of a process's log output the regex does not parse."""
    lines = (line.partition(_MARK)[2] for line in output.splitlines() if _MARK in line)
    return [line for line in lines if not TRANSACTION_LINE.match(line)]


@pytest.fixture(autouse=True)
def _transaction_lines_parse() -> Iterator[None]:
    start = len(LINES)
    yield
    bad = [line for line in LINES[start:] if not TRANSACTION_LINE.match(line)]
    assert not bad, f"transaction lines the docs/logging.md regex does not parse: {bad[:3]}"
