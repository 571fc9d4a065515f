"""A pooled upstream connection is never handed on in the middle of a transaction.

Against a real Postfix (which answers a second MAIL with ``503 5.5.1 nested
MAIL command``): after a client drops mid-DATA, times out in DATA, or has its
DATA refused by the upstream, the next clients through the same pooled
connection must all be delivered.
"""

from __future__ import annotations

import contextlib
import smtplib
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gateway_harness import GatewayThread
from servers import Postfix
from wire_client import RawClient

pytestmark = pytest.mark.integration

MESSAGE = (
    b"From: Alice <alice@sender.test>\r\n"
    b"To: bob@example.org\r\n"
    b"Subject: pooled\r\n"
    b"Date: Sat, 28 Nov 2026 10:00:00 +0000\r\n"
    b"Message-ID: <pooled-1@sender.test>\r\n"
    b"\r\n"
    b"hello\r\n"
)
FOLLOWING_CLIENTS = 4


def relaying(tmp_path: Path, upstream: str, **smtp: object) -> GatewayThread:
    overrides: dict[str, dict[str, object]] = {
        "relay": {"domains": ["example.org"], "upstream": upstream}
    }
    if smtp:
        overrides["smtp"] = dict(smtp)
    return GatewayThread(tmp_path, overrides)


def send(port: int, sender: str = "alice@sender.test") -> dict[str, tuple[int, bytes]]:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo("client.sender.test")
        return client.sendmail(sender, ["bob@example.org"], MESSAGE)


def start_transaction(port: int, sender: str = "alice@sender.test") -> RawClient:
    client = RawClient(port)
    client.command("EHLO client.sender.test")
    assert client.command(f"MAIL FROM:<{sender}>").startswith("250")
    reply = client.command("RCPT TO:<bob@example.org>")
    assert reply.startswith("250"), reply
    return client


def upstream_refuses_data(client: RawClient) -> bool:
    """The message goes upstream at end of data; the upstream's DATA refusal
    is what the client hears then."""
    assert client.command("DATA").startswith("354")
    refused = client.command(MESSAGE + b".")
    assert refused.startswith("554 5.7.1"), refused
    return True


def pooled_count(gateway: GatewayThread, at_least: int = 1) -> int:
    """Idle pooled upstream connections, once the last session has let go."""
    assert gateway.gateway is not None
    deadline = time.monotonic() + 3
    while len(gateway.gateway.upstreams.idle) < at_least and time.monotonic() < deadline:
        time.sleep(0.02)
    return len(gateway.gateway.upstreams.idle)


def postfix_refusing_data_from_one_sender(
    tmp_path: Path, postfix_factory: Callable[..., Postfix]
) -> Postfix:
    """Postfix answering DATA with 554 for ``refused@sender.test`` only."""
    table = tmp_path / "refused_senders"
    table.write_text("refused@sender.test 554 5.7.1 No DATA\n")
    restriction = f"check_sender_access texthash:{table}"
    return postfix_factory(
        virtual_mailboxes=["bob@example.org"], main_cf={"smtpd_data_restrictions": restriction}
    )


@contextlib.contextmanager
def after_refused_data(
    tmp_path: Path, postfix_factory: Callable[..., Postfix]
) -> Iterator[tuple[GatewayThread, Postfix, RawClient]]:
    """A gateway relaying to a Postfix that refused the DATA of the client
    it yields, which has just heard that refusal."""
    postfix = postfix_refusing_data_from_one_sender(tmp_path, postfix_factory)
    with relaying(tmp_path, postfix.address) as gateway:
        client = start_transaction(gateway.port, sender="refused@sender.test")
        assert upstream_refuses_data(client)
        yield gateway, postfix, client


def assert_following_clients_delivered(gateway: GatewayThread, postfix: Postfix) -> None:
    for _ in range(FOLLOWING_CLIENTS):
        assert send(gateway.port) == {}
        # One connection serves them all: each client reuses the pooled one.
        assert pooled_count(gateway) == 1
    postfix.wait_delivered(FOLLOWING_CLIENTS, timeout=30)
    assert len(postfix.maildir_messages("bob@example.org")) == FOLLOWING_CLIENTS


def test_client_dropping_mid_data_leaves_a_clean_pooled_connection(
    tmp_path: Path, postfix_factory: Callable[..., Postfix]
) -> None:
    postfix = postfix_factory(virtual_mailboxes=["bob@example.org"])
    with relaying(tmp_path, postfix.address) as gateway:
        client = start_transaction(gateway.port)
        assert client.command("DATA").startswith("354")
        client.send(b"Subject: cut off\r\n\r\nhalf a mess")
        client.close()
        assert pooled_count(gateway) <= 1
        assert_following_clients_delivered(gateway, postfix)


def test_client_timing_out_in_data_leaves_a_clean_pooled_connection(
    tmp_path: Path, postfix_factory: Callable[..., Postfix]
) -> None:
    postfix = postfix_factory(virtual_mailboxes=["bob@example.org"])
    with relaying(tmp_path, postfix.address, command_timeout=1) as gateway:
        client = start_transaction(gateway.port)
        assert client.command("DATA").startswith("354")
        client.send(b"Subject: slow\r\n\r\nand then nothing")
        assert client.reply().startswith("421 4.4.2")
        client.close()
        assert_following_clients_delivered(gateway, postfix)


def test_upstream_refusing_data_leaves_a_clean_connection(
    tmp_path: Path, postfix_factory: Callable[..., Postfix]
) -> None:
    with after_refused_data(tmp_path, postfix_factory) as (gateway, postfix, client):
        client.command("QUIT")
        client.close()
        assert pooled_count(gateway) <= 1
        assert_following_clients_delivered(gateway, postfix)


def test_same_client_can_send_again_after_the_upstream_refused_data(
    tmp_path: Path, postfix_factory: Callable[..., Postfix]
) -> None:
    with after_refused_data(tmp_path, postfix_factory) as (_gateway, _postfix, client):
        # The refused transaction is over; a new one on the same session works.
        assert client.command("MAIL FROM:<alice@sender.test>").startswith("250")
        reply = client.command("RCPT TO:<bob@example.org>")
        assert reply.startswith("250"), reply
        client.command("QUIT")
        client.close()
