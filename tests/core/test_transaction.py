"""Transaction: the header block is parsed once, shared by ``message``; queue ids."""

from __future__ import annotations

import email.parser
import os
from typing import Any

import pytest

from mailmoat.core import headers as headers_module
from mailmoat.core.transaction import Session, Transaction, new_queue_id
from mailmoat.message import fastpath, parse_message
from mailmoat.message.parse import _parse

MESSAGE = (
    b"Received: from a by b\r\nSubject: hello\r\nFrom: Joe <joe@example.com>\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
    + b"".join(b"1" + b"X" * 78 + b"\r\n" for _ in range(50))
    + b"see http://example.com/x\r\n"
)


def _count_parses(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Patch the header parses (``parse_header_block``'s own and the
    stdlib's header-only one: True) and the stdlib's full parse (False) to
    record each call."""
    calls: list[bool] = []
    real = email.parser.Parser.parse
    real_plain = headers_module.plain_header_block

    def spy(self: email.parser.Parser, fp: Any, headersonly: bool = False) -> Any:
        calls.append(headersonly)
        return real(self, fp, headersonly)

    def spy_plain(block: bytes) -> Any:
        found = real_plain(block)
        if found is not None:
            calls.append(True)
        return found

    monkeypatch.setattr(email.parser.Parser, "parse", spy)
    monkeypatch.setattr(headers_module, "plain_header_block", spy_plain)
    monkeypatch.setattr(fastpath, "plain_header_block", spy_plain)
    return calls


def test_message_reuses_the_header_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    expected = _parse(MESSAGE, None, None, fast=False)
    calls = _count_parses(monkeypatch)
    tx = Transaction(Session(client_ip="192.0.2.1"), data=MESSAGE)
    headers = tx.headers
    assert calls == [True]
    message = tx.message
    assert calls == [True]  # no second header parse, no full parse
    assert message == expected
    assert tx.headers is headers and tx.message is message
    assert headers["Subject"] == "hello" and headers.get_payload() == ""


def test_message_first_parses_headers_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _count_parses(monkeypatch)
    tx = Transaction(Session(client_ip="192.0.2.1"), data=MESSAGE)
    assert tx.message.subject == "hello"
    assert tx.headers["From"] == "Joe <joe@example.com>"
    assert calls == [True]


@pytest.mark.parametrize(
    "data",
    [
        b"Subject: lf only\n\nbody\n",
        b"From a@b x\r\nSubject: mbox\r\n\r\nbody\r\n",
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n',
        b"Subject: a\r\r\n\r\nbody\r\n",
    ],
)
def test_message_when_the_head_does_not_fit(data: bytes) -> None:
    tx = Transaction(Session(client_ip="192.0.2.1"), data=data)
    assert tx.message == parse_message(data) == _parse(data, None, None, fast=False)


def test_queue_ids_are_short_hex_and_differ_in_a_forked_worker() -> None:
    ids = {new_queue_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 12 and i == i.upper() and int(i, 16) >= 0 for i in ids)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # a worker: its first id must not be the parent's next one
        os.write(write_end, new_queue_id().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read_end, 64).decode()
    os.close(read_end)
    os.close(write_end)
    assert len(child) == 12 and child != new_queue_id()
