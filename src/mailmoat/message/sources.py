"""Where stored messages come from: a file, a directory, a Maildir, an mbox.

Contract: ``iter_messages(path)`` yields (label, raw bytes) for every message
under ``path``, in a stable order (sorted names), and raises
``FileNotFoundError`` if ``path`` does not exist. ``label`` names the file,
or ``file:N`` for the N-th message of an mbox.

* A Maildir (a directory with ``cur``/``new``) yields ``new`` then ``cur``.
* Any other directory is walked recursively; hidden files are skipped.
* A file holding two or more mbox ``From `` separators (each at the start
  of the file or after a blank line, with a time of day) is split as an mbox, with ``>From``
  unquoting; any other file is one message (a single leading ``From`` line
  is left for ``parse_message`` to strip).

Why not ``mailbox``: it guesses no format, needs the caller to know it, and
``mailbox.mbox`` builds a table of contents of the whole file first.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

# "From sender Mon Jan  1 00:00:00 2001": the time of day tells a separator
# from a body line that happens to start with "From ".
_SEPARATOR = re.compile(rb"(?:\A|\n\n|\r\n\r\n)From [^\n]*\d\d:\d\d[^\n]*\n")
_QUOTED_FROM = re.compile(rb"^>(>*From )", re.M)


def iter_messages(path: str | Path) -> Iterator[tuple[str, bytes]]:
    root = Path(path)
    if root.is_dir():
        yield from _iter_dir(root)
    elif root.is_file():
        yield from _iter_file(root)
    else:
        raise FileNotFoundError(str(root))


def _iter_dir(root: Path) -> Iterator[tuple[str, bytes]]:
    if (root / "cur").is_dir() and (root / "new").is_dir():
        folders = [root / "new", root / "cur"]
        files = [p for folder in folders for p in sorted(folder.iterdir()) if p.is_file()]
    else:
        files = sorted(
            p
            for p in root.rglob("*")
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
        )
    for file in files:
        yield from _iter_file(file)


def _iter_file(file: Path) -> Iterator[tuple[str, bytes]]:
    data = file.read_bytes()
    if not data.startswith(b"From "):
        yield str(file), data
        return
    starts = [m.start() + m.group(0).index(b"From ") for m in _SEPARATOR.finditer(data)]
    if len(starts) < 2:
        yield str(file), data
        return
    for number, (start, end) in enumerate(zip(starts, [*starts[1:], len(data)], strict=True)):
        chunk = data[start:end]
        yield f"{file}:{number}", _QUOTED_FROM.sub(rb"\1", chunk)
