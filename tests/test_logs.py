"""Log targets and the transaction line: the documented regex, hostile values,
syslog and journald datagrams on loopback sockets, the MTA's queue id."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from front_checks import front_config, scripted_runtime
from log_guard import LINES
from mailmoat.config import ConfigError, LogConfig
from mailmoat.core.record import TransactionRecord
from mailmoat.core.symbols import Symbol
from mailmoat.logs import TRANSACTION_LINE, TRANSACTION_LOGGER, configure, transaction_line
from mailmoat.policy import PolicyServer

DOCS = Path(__file__).resolve().parents[1] / "docs" / "logging.md"


def _record(**changes: object) -> TransactionRecord:
    values: dict[str, object] = {
        "queue_id": "0A1B2C3D4E5F",
        "client_ip": "192.0.2.7",
        "client_rdns": "mail.example.test",
        "helo": "mail.example.test",
        "mail_from": "alice@example.test",
        "rcpts": ("bob@example.net", "carol@example.net"),
        "action": "reject",
        "reason": "score",
        "score": 12.5,
        "symbols": (Symbol("DNSBL_ZEN_SBL", 6.0), Symbol("BAYES_SPAM", 6.5)),
        "message_id": "<abc.123@example.test>",
        "reply": "554 5.7.1 Message rejected as spam",
        "duration": 0.25,
        "eod_seconds": 0.0123,
        "front": "milter",
        "mta_queue_id": "4ZxY1b2C3dz9",
    }
    values.update(changes)
    return TransactionRecord(**values)  # type: ignore[arg-type]


def _unescape(value: str) -> str:
    raw = re.sub(rb"\\x([0-9A-F]{2})", lambda m: bytes([int(m[1], 16)]), value.encode())
    return raw.decode("utf-8", "surrogateescape")


def test_the_documented_regex_is_the_one_in_the_code() -> None:
    block = re.search(r"```regex\n(.*?)\n```", DOCS.read_text(), re.S)
    assert block is not None, "docs/logging.md lost its regex block"
    assert block[1] == TRANSACTION_LINE.pattern


def test_a_line_carries_every_field() -> None:
    match = TRANSACTION_LINE.match(transaction_line(_record()))
    assert match is not None
    assert match.groupdict() == {
        "queue_id": "0A1B2C3D4E5F",
        "front": "milter",
        "mta_queue_id": "4ZxY1b2C3dz9",
        "client_ip": "192.0.2.7",
        "client_rdns": "mail.example.test",
        "helo": "mail.example.test",
        "mail_from": "alice@example.test",
        "rcpts": "bob@example.net,carol@example.net",
        "message_id": "abc.123@example.test",
        "size": "0",
        "action": "reject",
        "reason": "score",
        "score": "12.5",
        "symbols": "DNSBL_ZEN_SBL=6,BAYES_SPAM=6.5",
        "stage": "data",
        "time": "0.250",
        "eod": "0.012s",
        "reply": "554 5.7.1 Message rejected as spam",
    }


HOSTILE = {
    "helo": 'evil> to=<x" action=accept\r\n',
    "mail_from": "a b@[1.2.3.4]\\",
    "client_rdns": "]x[ y",
    "message_id": "<id with space>\n<second@x>",
    "reply": '550 "quoted" \\ reply\r\n',
    "rcpts": ("a,b@x", "\udcff@x", "ü@x"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_values_stay_in_their_field_and_round_trip(name: str) -> None:
    record = _record(**{name: HOSTILE[name]})
    line = transaction_line(record)
    match = TRANSACTION_LINE.match(line)
    assert match is not None, line
    assert match["action"] == "reject" and match["score"] == "12.5"
    if name == "rcpts":
        assert [_unescape(r) for r in match["rcpts"].split(",")] == list(HOSTILE["rcpts"])
    elif name == "message_id":
        assert _unescape(match["message_id"]) == "id with space>\n<second@x"
    else:
        assert _unescape(match[name]) == HOSTILE[name]
    line.encode("utf-8")  # no lone surrogate reaches a log target


def test_no_data_stage_means_no_eod_time() -> None:
    match = TRANSACTION_LINE.match(transaction_line(_record(eod_seconds=-1.0, stage="rcpt")))
    assert match is not None and match["eod"] == "-"


@pytest.fixture
def datagram_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "log.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield sock, path
    finally:
        for handler in root.handlers:
            if handler not in handlers:
                handler.close()
        root.handlers[:] = handlers
        root.setLevel(level)
        sock.close()


def test_syslog_target_sends_rfc3164_with_the_facility(datagram_socket) -> None:
    sock, path = datagram_socket
    configure(LogConfig(target="syslog", facility="local3", socket=path))
    line = transaction_line(_record())
    logging.getLogger(TRANSACTION_LOGGER).info(line)
    datagram = sock.recv(65536).decode()
    # local3 = 19; priority = facility * 8 + severity (info = 6)
    prefix = f"<{19 * 8 + 6}>mailmoat[{os.getpid()}]: {TRANSACTION_LOGGER} INFO "
    assert datagram.startswith(prefix), datagram
    assert TRANSACTION_LINE.match(datagram.removeprefix(prefix).rstrip("\x00"))


def test_journald_target_sends_native_fields(datagram_socket) -> None:
    sock, path = datagram_socket
    configure(LogConfig(target="journald", facility="mail", socket=path))
    logging.getLogger(TRANSACTION_LOGGER).info(transaction_line(_record()))
    logging.getLogger("mailmoat.test").warning("two\nlines")
    fields = dict(line.split("=", 1) for line in sock.recv(65536).decode().splitlines())
    assert TRANSACTION_LINE.match(fields["MESSAGE"])
    assert fields["PRIORITY"] == "6" and fields["SYSLOG_FACILITY"] == "2"
    assert fields["SYSLOG_IDENTIFIER"] == "mailmoat"
    assert fields["MAILMOAT_QUEUE_ID"] == "0A1B2C3D4E5F"
    assert fields["MAILMOAT_ACTION"] == "reject"
    # A value with a newline: name, newline, 64-bit little-endian length, data.
    multi = sock.recv(65536)
    assert b"MESSAGE\n" + (9).to_bytes(8, "little") + b"two\nlines\n" in multi
    assert b"PRIORITY=4\n" in multi


def test_an_unreachable_log_socket_is_a_config_error(tmp_path: Path) -> None:
    root = logging.getLogger()
    handlers = list(root.handlers)
    for target in ("syslog", "journald"):
        with pytest.raises(ConfigError, match=r"log\.target: cannot log to"):
            configure(LogConfig(target=target, socket=str(tmp_path / "absent.sock")))
    assert root.handlers == handlers


def _policy_request(**attrs: str) -> bytes:
    base = {
        "request": "smtpd_access_policy",
        "protocol_state": "RCPT",
        "client_address": "192.0.2.66",
        "client_name": "unknown",
        "helo_name": "spam.test",
        "sender": "x@spam.test",
        "recipient": "b@mailmoat.test",
        "instance": "1.abc",
        "queue_id": "4ZxY1b2C3dz9",
    }
    base.update(attrs)
    return "".join(f"{k}={v}\n" for k, v in base.items()).encode() + b"\n"


async def test_the_policy_door_logs_the_postfix_queue_id() -> None:
    runtime, records = scripted_runtime(front_config())
    server = PolicyServer(runtime)
    host, port = await server.start()
    seen = len(LINES)
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(_policy_request())
        await writer.drain()
        answer = await asyncio.wait_for(reader.readuntil(b"\n\n"), 5)
    finally:
        writer.close()
        await server.stop(grace=1)
    assert answer.startswith(b"action=554")
    assert records and records[-1].mta_queue_id == "4ZxY1b2C3dz9"
    matches = [TRANSACTION_LINE.match(line) for line in LINES[seen:]]
    assert [(m["front"], m["mta_queue_id"]) for m in matches if m] == [("policy", "4ZxY1b2C3dz9")]


async def test_the_milter_door_logs_the_postfix_queue_id_and_eod_time() -> None:
    from mailmoat.milter.server import MilterServer
    from milter.mta import FakeMta

    runtime, records = scripted_runtime()
    server = MilterServer(runtime)
    host, port = await server.start()
    seen = len(LINES)
    mta = await FakeMta.connect(host, port)
    try:
        await mta.session("192.0.2.1")
        headers = [("From", "a@ham.test"), ("Message-ID", "<m1@ham.test>"), ("Subject", "hi")]
        await mta.message("a@ham.test", ["b@mailmoat.test"], headers, b"hello\r\n")
    finally:
        await mta.quit()
        await server.stop(grace=1)
    assert records and records[-1].mta_queue_id == "QUEUE1"
    matches = [m for m in map(TRANSACTION_LINE.match, LINES[seen:]) if m]
    assert [(m["front"], m["mta_queue_id"], m["message_id"]) for m in matches] == [
        ("milter", "QUEUE1", "m1@ham.test")
    ]
    assert matches[0]["eod"] != "-" and matches[0]["stage"] == "data"
