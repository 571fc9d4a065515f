"""The milter front against a scripted MTA: stages, answers, header edits, records."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from front_checks import AUTH_RESULTS, FORGED, front_config, scripted_runtime
from mailmoat.config import QuarantineConfig
from mailmoat.core.record import TransactionRecord
from mailmoat.delivery.quarantine import Quarantine
from mailmoat.milter import codec
from mailmoat.milter.server import MilterServer
from milter.mta import FakeMta

HEADERS = [
    ("From", "a@ham.test"),
    ("To", "b@mailmoat.test"),
    ("Subject", "hello"),
    ("X-Spam-Flag", "YES"),
    FORGED,
    ("X-Spam-Score", "99"),
]


@pytest.fixture
async def milter() -> AsyncIterator[tuple[FakeMta, list[TransactionRecord]]]:
    runtime, records = scripted_runtime()
    server = MilterServer(runtime)
    host, port = await server.start()
    mta = await FakeMta.connect(host, port)
    yield mta, records
    await mta.quit()
    await server.stop(grace=1)


def _cmds(packets: list[codec.Packet]) -> list[bytes]:
    return [p.command for p in packets]


async def test_ham_is_accepted_with_header_edits(milter) -> None:
    mta, records = milter
    assert _cmds(await mta.session("192.0.2.1")) == [b"c"]
    out = await mta.message("a@ham.test", ["b@mailmoat.test"], HEADERS, b"hi XTAG\r\n")
    assert _cmds(out["rcpt"]) == [b"c"]
    eom = out["eom"]
    assert eom[-1].command == codec.ACCEPT
    deletions = [p.data for p in eom if p.command == codec.CHGHEADER]
    # Incoming X-Spam-* and the forged field go, each by its 1-based index.
    assert sorted(deletions) == sorted(
        [
            struct.pack("!I", 1) + b"X-Spam-Flag\x00\x00",
            struct.pack("!I", 1) + b"X-Spam-Score\x00\x00",
            struct.pack("!I", 1) + b"Authentication-Results\x00\x00",
        ]
    )
    inserted = [p.data[4:].split(b"\x00")[:2] for p in eom if p.command == codec.INSHEADER]
    names = [name.decode() for name, _ in reversed(inserted)]
    assert names == [
        "Authentication-Results",
        "X-Spam-Flag",
        "X-Spam-Status",
        "X-Spam-Score",
        "X-Spam-Symbols",
    ]
    values = {name.decode(): value.decode() for name, value in inserted}
    assert values["Authentication-Results"] == " " + AUTH_RESULTS[1]
    assert values["X-Spam-Score"] == " 7.00"
    [record] = records
    assert (record.front, record.action, record.stage) == ("milter", "add_header", "data")
    assert record.subject == "hello"
    assert record.rcpts == ("b@mailmoat.test",)


async def test_spam_rejected_at_end_of_data(milter) -> None:
    mta, records = milter
    await mta.session("192.0.2.1")
    out = await mta.message("a@ham.test", ["b@mailmoat.test"], HEADERS[:3], b"XSPAM\r\n")
    assert out["eom"][-1] == codec.Packet(b"y", b"554 5.7.1 Message refused as spam\x00")
    assert [r.action for r in records] == ["reject"]


async def test_quarantine_and_discard(milter) -> None:
    mta, records = milter
    await mta.session("192.0.2.1")
    out = await mta.message("a@ham.test", ["b@mailmoat.test"], HEADERS[:3], b"XQUAR\r\n")
    assert _cmds(out["eom"])[-2:] == [codec.QUARANTINE, codec.ACCEPT]
    out = await mta.message("a@ham.test", ["b@mailmoat.test"], HEADERS[:3], b"XDISCARD\r\n")
    assert _cmds(out["eom"]) == [codec.DISCARD]
    assert [(r.action, r.reason) for r in records] == [
        ("quarantine", "quarantined"),
        ("discard", "discard"),
    ]


async def test_rcpt_soft_reject_only_that_recipient(milter) -> None:
    mta, records = milter
    await mta.session("192.0.2.1")
    out = await mta.message(
        "a@ham.test", ["grey@mailmoat.test", "b@mailmoat.test"], HEADERS[:3], b"hi\r\n"
    )
    assert out["rcpt"] == [
        codec.Packet(b"y", b"451 4.7.1 Greylisted, try again later\x00"),
        codec.Packet(b"c", b""),
    ]
    assert out["eom"][-1].command == codec.ACCEPT
    assert [(r.action, r.stage, r.rcpts) for r in records] == [
        ("soft_reject", "rcpt", ("grey@mailmoat.test",)),
        ("accept", "data", ("b@mailmoat.test",)),
    ]


async def test_denied_client_refused_at_rcpt(milter) -> None:
    mta, records = milter
    assert _cmds(await mta.session("192.0.2.66")) == [b"c"]
    out = await mta.message("a@ham.test", ["b@mailmoat.test"], [], b"")
    assert out["rcpt"] == [codec.Packet(b"y", b"554 5.7.1 Client host rejected: denied\x00")]
    assert records[0].reason == "deny_list"


async def test_step_failure_answers_tempfail(milter, monkeypatch) -> None:
    mta, _records = milter
    await mta.session("192.0.2.1")

    async def broken(*_args: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("mailmoat.pipeline.Pipeline.run", broken)
    out = await mta.send(codec.MAIL, b"<a@ham.test>\x00")
    assert out == [codec.Packet(codec.TEMPFAIL, b"")]


async def test_quarantine_kept_by_mailmoat(tmp_path: Path) -> None:
    """``[milter] quarantine = "mailmoat"``: the message waits in mailmoat's
    quarantine (dashboard), the MTA discards its copy; a failed store tempfails."""
    base = front_config()
    config = replace(
        base,
        milter=replace(base.milter, quarantine="mailmoat"),
        quarantine=QuarantineConfig(directory=str(tmp_path / "q")),
    )
    runtime, records = scripted_runtime(config)
    server = MilterServer(runtime)
    host, port = await server.start()
    mta = await FakeMta.connect(host, port)
    try:
        await mta.session("192.0.2.1")
        out = await mta.message("a@ham.test", ["b@mailmoat.test"], HEADERS[:3], b"XQUAR\r\n")
        assert _cmds(out["eom"]) == [codec.DISCARD]
        [held] = Quarantine(tmp_path / "q").list()
        assert held.mail_from == "a@ham.test" and held.rcpts == ["b@mailmoat.test"]
        assert held.subject == "hello" and held.queue_id == records[-1].queue_id
        found = Quarantine(tmp_path / "q").get(held.id)
        assert found is not None and b"X-Spam-Flag: YES" in found[1]
        assert b"XQUAR" in found[1]
        assert [(r.action, r.reason) for r in records] == [("quarantine", "quarantined")]

        # The quarantine cannot be written: retry later, lose nothing.
        (tmp_path / "q").rename(tmp_path / "q-kept")
        (tmp_path / "q").write_text("not a directory")
        out = await mta.message("a@ham.test", ["b@mailmoat.test"], HEADERS[:3], b"XQUAR\r\n")
        assert _cmds(out["eom"]) == [codec.TEMPFAIL]
        assert len(Quarantine(tmp_path / "q-kept").list()) == 1
    finally:
        await mta.quit()
        await server.stop(grace=1)
