"""When the SIGTERM grace ends, a client in DATA hears ``451 4.3.2`` and a
client inside a transaction ``421 4.3.2`` before the close: never a silent
close it could take for a delivery (before the fix the DATA flag was
cleared while the cancellation unwound, so no reply went out).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway_harness import GatewayThread
from wire_client import RawClient

pytestmark = pytest.mark.integration


def test_grace_over_tells_the_client_in_data_451_and_one_in_a_transaction_421(
    tmp_path: Path,
) -> None:
    with GatewayThread(tmp_path, {"smtp": {"shutdown_grace": 0.5}}) as gateway:
        in_data = RawClient(gateway.port)
        in_data.command("EHLO data.sender.test")
        in_data.command("MAIL FROM:<a@sender.test>")
        in_data.command("RCPT TO:<someone@example.org>")
        assert in_data.command("DATA").startswith("354")
        in_data.send(b"Subject: half\r\n\r\nfirst half\r\n")
        in_mail = RawClient(gateway.port)
        in_mail.command("EHLO mail.sender.test")
        assert in_mail.command("MAIL FROM:<a@sender.test>").startswith("250")
        assert gateway.gateway is not None
        gateway.call(gateway.gateway.stop())
        assert in_data.reply().startswith("451 4.3.2")
        assert in_data.closed()
        assert in_mail.reply().startswith("421 4.3.2")
        assert in_mail.closed()
        assert gateway.maildir_messages() == []
