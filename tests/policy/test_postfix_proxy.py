"""Postfix in front with mailmoat as its ``smtpd_proxy_filter`` (docs/postfix.md,
snippet proxy/master.cf): Postfix smtpd -> mailmoat serve -> a second Postfix
smtpd that queues. Ham arrives with mailmoat's headers; mailmoat's refusal
reaches the client."""

from __future__ import annotations

import smtplib
import time
from email.parser import BytesParser
from email.policy import default

import pytest

from cluster.nodes import Node
from postfix_snippets import master_cf
from servers import free_port

pytestmark = pytest.mark.integration

BOX = "ham@mailmoat.test"


def _send(port: int, sender: str, source: str = "127.0.0.1") -> tuple[int, str]:
    message = (
        f"From: {sender}\r\nTo: {BOX}\r\nSubject: via proxy\r\n"
        "Message-ID: <p1@ham.test>\r\nDate: Sat, 28 Nov 2026 03:00:00 +0000\r\n\r\nhello\r\n"
    )
    with smtplib.SMTP("127.0.0.1", port, timeout=30, source_address=(source, 0)) as client:
        client.ehlo("client.ham.test")
        client.mail(sender)
        code, text = client.rcpt(BOX)
        if code != 250:
            return code, text.decode()
        code, text = client.data(message.encode())
        return code, text.decode()


def test_mailmoat_as_smtpd_proxy_filter(postfix_factory, tmp_path) -> None:
    back_port = free_port()
    while True:  # the node's own port must not be the one kept for Postfix
        node = Node(
            "proxy",
            tmp_path,
            f"sqlite:///{tmp_path}/state.db",
            '[lists]\ndeny = ["from:spammer@bad.test"]\n',
            upstream=f"127.0.0.1:{back_port}",
            smtp_extra='xforward_hosts = ["127.0.0.1/32"]',
        ).start()
        if node.port != back_port:
            break
        node.stop()
    try:
        ports = {"127.0.0.1:2525": f"127.0.0.1:{node.port}"}
        ports["127.0.0.1:10026"] = f"127.0.0.1:{back_port}"
        options, others = master_cf("proxy/master.cf", ports)
        postfix = postfix_factory(virtual_mailboxes=[BOX], smtpd_options=options, master_cf=others)
        # The client connects from 127.0.0.9; Postfix passes that on with
        # XFORWARD, so mailmoat screens and logs the real client.
        assert _send(postfix.port, "friend@ham.test", "127.0.0.9")[0] == 250
        code, text = _send(postfix.port, "spammer@bad.test")
        assert code == 554 and "5.7.1" in text
        postfix.wait_delivered(1, timeout=20)
        [raw] = postfix.maildir_messages(BOX)
        message = BytesParser(policy=default).parsebytes(raw)
        assert message["X-Spam-Status"].startswith("No, score=")
        assert "(mailmoat)" in " ".join(message.get_all("Received"))
        # The refusal reaches the client first; mailmoat logs the transaction
        # when Postfix ends the proxy session, which may be a moment later.
        deadline = time.monotonic() + 10
        while "reason=denylist" not in node.log_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        log = node.log_text()
        assert "reason=denylist" in log and "from=<spammer@bad.test>" in log
        assert "client=127.0.0.9[" in log
    finally:
        node.stop()
