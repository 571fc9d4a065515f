"""The upstream client against a real Postfix, which offers CHUNKING: the
message goes as one BDAT and arrives intact; a BDAT Postfix refuses leaves
the pooled connection reset and fit for the next message."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mailmoat.delivery.upstream import ClientFacts, UpstreamSession
from servers import Postfix

pytestmark = pytest.mark.integration

FACTS = ClientFacts("192.0.2.7", "client.example", "helo.example")
MESSAGE = (
    b"From: Alice <alice@sender.test>\r\n"
    b"Subject: chunked\r\n"
    b"\r\n"
    b".a line starting with a dot\r\n.\r\n..two dots\r\nlast line\r\n"
)


def session(postfix: Postfix) -> UpstreamSession:
    return UpstreamSession(
        postfix.host,
        postfix.port,
        "mx.test",
        connect_timeout=10,
        command_timeout=10,
        data_timeout=10,
    )


async def test_bdat_to_postfix_delivers_the_message_intact(
    postfix_factory: Callable[..., Postfix],
) -> None:
    postfix = postfix_factory(
        virtual_mailboxes=["bob@example.org"], main_cf={"message_size_limit": "2000"}
    )
    upstream = session(postfix)
    await upstream.open()
    assert "chunking" in upstream.extensions
    await upstream.begin("alice@sender.test", [], FACTS, "bob@example.org")
    refused = await upstream.data(MESSAGE + b"x" * 3000 + b"\r\n")
    assert refused.code == 552, refused
    assert upstream.reusable  # reset after the refusal
    mail, rcpt = await upstream.begin("alice@sender.test", [], FACTS, "bob@example.org")
    assert mail.ok and rcpt is not None and rcpt.ok
    accepted = await upstream.data(MESSAGE)
    assert accepted.code == 250 and "queued" in accepted.text, accepted
    assert upstream.reusable
    await upstream.quit()
    postfix.wait_delivered(1, timeout=20)
    [delivered] = postfix.maildir_messages("bob@example.org")
    assert delivered.replace(b"\n", b"\r\n").endswith(MESSAGE.split(b"\r\n\r\n", 1)[1])
