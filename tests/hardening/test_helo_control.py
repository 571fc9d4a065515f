"""A bare CR (or any control character) in HELO/EHLO never travels upstream.

It used to reach the upstream raw inside our Received and
Authentication-Results fields; with an upstream offering XFORWARD the client
got 501 at RCPT and one upstream connection leaked per such client.
"""

from __future__ import annotations

import re
import smtplib
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway_harness import GatewayThread
from mailmoat.wire.content import edit_headers, fold
from servers import Postfix
from wire_client import RawClient

pytestmark = pytest.mark.integration

MESSAGE = b"From: a@sender.test\r\nSubject: helo\r\n\r\nhello\r\n"
BARE_CR_OR_LF = re.compile(rb"\r(?!\n)|(?<!\r)\n")


def header_block(message: bytes) -> bytes:
    return message[: message.index(b"\r\n\r\n") + 2]


@pytest.mark.parametrize(
    "name", [b"client\rinjected.test", b"client\x00.test", b"client\x0binjected.test"]
)
@pytest.mark.parametrize("verb", [b"EHLO", b"HELO"])
def test_control_characters_in_the_greeting_are_refused(
    tmp_path: Path, verb: bytes, name: bytes
) -> None:
    with GatewayThread(tmp_path) as gateway:
        client = RawClient(gateway.port)
        refused = client.command(verb + b" " + name)
        assert refused[:1] == "5" and " 5.5.2 " in refused, refused
        # The session goes on: a proper greeting and the mail are accepted.
        assert client.command("EHLO client.sender.test").startswith("250")
        assert client.command("MAIL FROM:<a@sender.test>").startswith("250")
        assert client.command("RCPT TO:<bob@example.org>").startswith("250")
        assert client.command("DATA").startswith("354")
        assert client.command(MESSAGE + b".").startswith("250")
        client.command("QUIT")
        [stored] = gateway.maildir_messages()
    assert not BARE_CR_OR_LF.search(header_block(stored))
    assert b"from client.sender.test" in stored


def test_fields_we_write_never_carry_a_bare_line_end() -> None:
    value = "from client\rinjected.test (unknown [192.0.2.1]) by mx\nX-Evil: 1\x00"
    folded = fold("Received", value)
    assert "\r" not in folded.replace("\r\n\t", "") and "\n" not in folded.replace("\r\n\t", "")
    assert "\x00" not in folded and "client?injected.test" in folded
    edited = edit_headers(MESSAGE, [("Authentication-Results", "mx; spf=pass smtp.helo=a\rb")])
    assert not BARE_CR_OR_LF.search(header_block(edited))
    assert edited.endswith(MESSAGE)


def established_to(port: int) -> int:
    """Established TCP connections (IPv4) whose remote port is ``port``."""
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        remote_port = int(fields[2].split(":")[1], 16)
        if remote_port == port and fields[3] == "01":
            count += 1
    return count


def test_greeting_with_a_bare_cr_leaks_no_xforward_upstream_connection(
    tmp_path: Path, postfix_factory: Callable[..., Postfix]
) -> None:
    postfix = postfix_factory(
        virtual_mailboxes=["bob@example.org"],
        main_cf={"smtpd_authorized_xforward_hosts": "127.0.0.0/8"},
    )
    overrides: dict[str, dict[str, object]] = {
        "relay": {"domains": ["example.org"], "upstream": postfix.address}
    }
    with GatewayThread(tmp_path, overrides) as gateway:
        for _ in range(20):
            client = RawClient(gateway.port)
            client.command(b"EHLO client\rinjected.test")
            client.command("MAIL FROM:<a@sender.test>")
            client.command("RCPT TO:<bob@example.org>")
            client.command("QUIT")
            client.close()
        with smtplib.SMTP("127.0.0.1", gateway.port, timeout=30) as good:
            good.ehlo("client.sender.test")
            assert good.sendmail("a@sender.test", ["bob@example.org"], MESSAGE) == {}
        time.sleep(0.3)
        # The pooled connection at most: none left behind by the 20 clients.
        assert established_to(postfix.port) <= 1
    postfix.wait_delivered(1, timeout=20)
    [delivered] = postfix.maildir_messages("bob@example.org")
    assert b"injected" not in delivered
