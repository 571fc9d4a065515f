"""mailmoat as a milter of a real Postfix on loopback (docs/postfix.md, snippet
milter/main.cf): spam refused at the right stage, ham delivered with headers."""

from __future__ import annotations

import asyncio
import smtplib
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default

import pytest

from front_checks import FORGED, scripted_runtime
from mailmoat.milter.server import MilterServer
from postfix_snippets import main_cf

pytestmark = pytest.mark.integration

BOX = "ham@mailmoat.test"
GREY = "grey@mailmoat.test"


def _message(body: str, extra: dict[str, str] | None = None) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "sender@ham.test"
    msg["To"] = BOX
    msg["Subject"] = "milter test"
    for name, value in (extra or {}).items():
        msg[name] = value
    msg.set_content(body)
    return msg


def _send(port: int, msg: EmailMessage, rcpts: list[str], source: str = "127.0.0.1"):
    with smtplib.SMTP("127.0.0.1", port, timeout=30, source_address=(source, 0)) as client:
        try:
            refused = client.send_message(msg, to_addrs=rcpts)
        except smtplib.SMTPRecipientsRefused as exc:
            return "rcpt", exc.recipients
        except smtplib.SMTPDataError as exc:
            return "data", (exc.smtp_code, exc.smtp_error.decode())
        return "sent", refused


async def test_postfix_with_mailmoat_milter(postfix_factory) -> None:
    runtime, records = scripted_runtime()
    server = MilterServer(runtime)
    _host, port = await server.start()
    params = main_cf("milter/main.cf", {"127.0.0.1:8891": f"127.0.0.1:{port}"})
    postfix = postfix_factory(virtual_mailboxes=[BOX, GREY], main_cf=params)
    try:
        # Ham (tagged): delivered, with our fields on top and the forged one gone.
        ham = _message("hello XTAG", {FORGED[0]: FORGED[1], "X-Spam-Flag": "YES"})
        assert await asyncio.to_thread(_send, postfix.port, ham, [BOX]) == ("sent", {})
        # Spam: refused at end of DATA with our reply.
        spam = _message("buy now XSPAM")
        where, (code, text) = await asyncio.to_thread(_send, postfix.port, spam, [BOX])
        assert (where, code) == ("data", 554)
        assert "5.7.1 Message refused as spam" in text
        # A greylisted recipient: refused at RCPT, only that one.
        grey = GREY
        result = await asyncio.to_thread(_send, postfix.port, _message("hi"), [grey, BOX])
        assert result[0] == "sent"
        assert result[1][grey][0] == 451
        # A denied client: refused at RCPT.
        where, refused = await asyncio.to_thread(
            _send, postfix.port, _message("hi"), [BOX], "127.0.0.66"
        )
        assert where == "rcpt"
        assert refused[BOX][0] == 554

        postfix.wait_delivered(2, timeout=20)
        delivered = postfix.maildir_messages(BOX)
        assert len(delivered) == 2
        first = BytesParser(policy=default).parsebytes(delivered[0])
        assert first["X-Spam-Flag"] == "YES"
        assert first["X-Spam-Score"] == "7.00"
        assert first["X-Spam-Status"].startswith("Yes, score=7.00")
        assert "TEST_XTAG(7)" in first["X-Spam-Symbols"]
        assert first.get_all("X-Spam-Flag") == ["YES"]  # the incoming one was removed
        results = first.get_all("Authentication-Results")
        assert results == ["mx.mailmoat.test; spf=pass smtp.mailfrom=ham.test"]
        assert first["Received"]  # Postfix's own
        second = BytesParser(policy=default).parsebytes(delivered[1])
        assert second["X-Spam-Status"].startswith("No, score=0.00")
        assert [(r.front, r.action, r.stage) for r in records] == [
            ("milter", "add_header", "data"),
            ("milter", "reject", "data"),
            ("milter", "soft_reject", "rcpt"),
            ("milter", "accept", "data"),
            ("milter", "reject", "rcpt"),
        ]
        assert all(r.client_ip.startswith("127.0.0.") for r in records)
        assert records[-1].client_ip == "127.0.0.66"
    finally:
        await server.stop(grace=1)
