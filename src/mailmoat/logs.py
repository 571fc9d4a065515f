"""Log targets and the one-line-per-transaction format.

Contract: ``configure(settings)`` points the root logger at ``[log]
target``: "stderr" (the handler ``mailmoat.cli`` set up), "syslog" (RFC 3164
datagrams to ``/dev/log`` through ``logging.handlers.SysLogHandler``) or
"journald" (the journal's native datagram protocol, with the transaction's
fields as structured fields); a socket that cannot be opened raises
``ConfigError`` naming ``log.target``. ``transaction_line(record)`` is the
stable line logged once per transaction by the logger
``mailmoat.transaction``; ``TRANSACTION_LINE`` is the regular expression
documented in docs/logging.md that parses every such line. Field values
never hold spaces, ``<>[]"\\`` or control characters: those are written as
``\\xHH`` (bytes of the UTF-8 encoding), so the line always splits the same
way whatever a client sent.
"""

from __future__ import annotations

import functools
import logging
import logging.handlers
import os
import re
import socket
from typing import TYPE_CHECKING

from mailmoat.config import ConfigError, LogConfig

if TYPE_CHECKING:
    from mailmoat.core.record import TransactionRecord

TRANSACTION_LOGGER = "mailmoat.transaction"
SYSLOG_SOCKET = "/dev/log"
JOURNAL_SOCKET = "/run/systemd/journal/socket"
FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"

TRANSACTION_LINE = re.compile(
    r"^(?P<queue_id>[0-9A-F]+): front=(?P<front>[a-z]+) mta_queue_id=(?P<mta_queue_id>\S+)"
    r" client=(?P<client_ip>[^\s\[\]]*)\[(?P<client_rdns>[^\s\[\]]*)\]"
    r" helo=<(?P<helo>[^\s<>]*)> from=<(?P<mail_from>[^\s<>]*)> to=<(?P<rcpts>[^\s<>]*)>"
    r" message_id=<(?P<message_id>[^\s<>]*)> size=(?P<size>\d+)"
    r" action=(?P<action>[a-z_]+) reason=(?P<reason>\S+) score=(?P<score>\S+)"
    r" symbols=(?P<symbols>\S+) stage=(?P<stage>[a-z]+)"
    r" time=(?P<time>\d+\.\d{3})s eod=(?P<eod>\d+\.\d{3}s|-)"
    r' reply="(?P<reply>[^"]*)"$'
)

_UNSAFE = re.compile(r'[\s<>\[\]"\\,\x00-\x1f\x7f\ud800-\udfff]')
_UNSAFE_REPLY = re.compile(r'["\\\x00-\x1f\x7f\ud800-\udfff]')


def _hex(match: re.Match[str]) -> str:
    return "".join(f"\\x{b:02X}" for b in match.group().encode("utf-8", "surrogateescape"))


def field(value: str) -> str:
    """``value`` safe inside one field of the line (see the module contract)."""
    return _UNSAFE.sub(_hex, value) if _UNSAFE.search(value) else value


@functools.lru_cache(maxsize=8192)
def _symbol(name: str, score: float) -> str:
    return f"{field(name)}={score:g}"


def transaction_line(record: TransactionRecord) -> str:
    symbols = ",".join([_symbol(s.name, s.score) for s in record.symbols])
    message_id = record.message_id.strip().removeprefix("<").removesuffix(">")
    eod = f"{record.eod_seconds:.3f}s" if record.eod_seconds >= 0 else "-"
    return (
        f"{record.queue_id}: front={record.front} mta_queue_id={field(record.mta_queue_id) or '-'}"
        f" client={field(record.client_ip)}[{field(record.client_rdns) or 'unknown'}]"
        f" helo=<{field(record.helo)}> from=<{field(record.mail_from)}>"
        f" to=<{','.join(field(r) for r in record.rcpts)}>"
        f" message_id=<{field(message_id)}> size={record.size}"
        f" action={record.action} reason={field(record.reason) or '-'} score={record.score:g}"
        f" symbols={symbols or '-'} stage={record.stage}"
        f" time={max(record.duration, 0.0):.3f}s eod={eod}"
        f' reply="{_UNSAFE_REPLY.sub(_hex, record.reply)}"'
    )


# -- targets ------------------------------------------------------------------

FACILITIES = {
    "mail": logging.handlers.SysLogHandler.LOG_MAIL,
    "daemon": logging.handlers.SysLogHandler.LOG_DAEMON,
    "user": logging.handlers.SysLogHandler.LOG_USER,
    **{f"local{n}": logging.handlers.SysLogHandler.LOG_LOCAL0 + n for n in range(8)},
}
_PRIORITIES = {"DEBUG": 7, "INFO": 6, "WARNING": 4, "ERROR": 3, "CRITICAL": 2}


class JournalHandler(logging.Handler):
    """Records as native journal entries (``KEY=value`` lines in one datagram;
    a value holding a newline is length-prefixed, as the protocol asks).
    Besides MESSAGE and PRIORITY it sends SYSLOG_IDENTIFIER, SYSLOG_FACILITY,
    LOGGER and, for transaction lines, MAILMOAT_QUEUE_ID and MAILMOAT_ACTION."""

    def __init__(self, path: str, facility: int) -> None:
        super().__init__()
        self.path = path
        self.facility = facility
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.connect(path)

    def fields(self, record: logging.LogRecord) -> dict[str, str]:
        found = {
            "MESSAGE": self.format(record),
            "PRIORITY": str(_PRIORITIES.get(record.levelname, 6)),
            "SYSLOG_IDENTIFIER": "mailmoat",
            "SYSLOG_FACILITY": str(self.facility),
            "SYSLOG_PID": str(os.getpid()),
            "LOGGER": record.name,
        }
        if record.name == TRANSACTION_LOGGER:
            match = TRANSACTION_LINE.match(record.getMessage())
            if match:
                found["MAILMOAT_QUEUE_ID"] = match["queue_id"]
                found["MAILMOAT_ACTION"] = match["action"]
        return found

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.sock.send(encode_journal(self.fields(record)))
        except Exception:
            self.handleError(record)

    def close(self) -> None:
        self.sock.close()
        super().close()


def encode_journal(fields: dict[str, str]) -> bytes:
    out = bytearray()
    for name, value in fields.items():
        data = value.encode("utf-8", "surrogateescape")
        if b"\n" in data:
            out += name.encode() + b"\n" + len(data).to_bytes(8, "little") + data + b"\n"
        else:
            out += name.encode() + b"=" + data + b"\n"
    return bytes(out)


def handler_for(settings: LogConfig) -> logging.Handler | None:
    """The handler for ``settings.target`` (None: keep stderr). Raises
    ConfigError when the socket cannot be reached."""
    facility = FACILITIES.get(settings.facility, FACILITIES["mail"])
    try:
        if settings.target == "syslog":
            path = settings.socket or SYSLOG_SOCKET
            # SysLogHandler defers a failed connect to the first record: try now.
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as probe:
                probe.connect(path)
            syslog = logging.handlers.SysLogHandler(path, facility)
            syslog.ident = f"mailmoat[{os.getpid()}]: "
            syslog.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
            return syslog
        if settings.target == "journald":
            journal = JournalHandler(settings.socket or JOURNAL_SOCKET, facility)
            journal.setFormatter(logging.Formatter("%(message)s"))
            return journal
    except OSError as exc:
        path = settings.socket or (SYSLOG_SOCKET if settings.target == "syslog" else JOURNAL_SOCKET)
        raise ConfigError(
            f"log.target: cannot log to {settings.target} at {path!r}: {exc.strerror or exc}"
        ) from exc
    return None


def configure(settings: LogConfig) -> None:
    """Set the root logger's level and target (the stderr handler stays
    when the target is stderr)."""
    root = logging.getLogger()
    root.setLevel(settings.level.upper())
    # No format of ours shows a record's process or thread: not looked up
    # for every record (on Python 3.11 the pid is a system call each time).
    logging.logProcesses = logging.logThreads = logging.logMultiprocessing = False
    handler = handler_for(settings)
    if handler is None:
        return
    for old in [h for h in root.handlers if getattr(h, "mailmoat_target", False)]:
        root.removeHandler(old)
        old.close()
    for old in [h for h in root.handlers if isinstance(h, logging.StreamHandler)]:
        if getattr(getattr(old, "stream", None), "name", None) == "<stderr>":
            root.removeHandler(old)
    handler.mailmoat_target = True  # type: ignore[attr-defined]
    root.addHandler(handler)
