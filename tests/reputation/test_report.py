"""``mailmoat report arf``: RFC 5965 reports of refused and quarantined
messages, written (--dry-run) and parsed back field by field with the
standard library, and delivered through smtp-sink to the contact table's
addresses only."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
from email.message import Message
from pathlib import Path

import pytest

from gateway_harness import toml_dumps
from mailmoat import cli
from mailmoat.config import load_config
from mailmoat.delivery.quarantine import Quarantine
from mailmoat.reputation.deliver import DeliveryRefused, send_reports
from mailmoat.stats.recorder import StatsRecorder
from mailmoat.store import open_store
from reputation_support import PREFIXES, record
from servers import SmtpSink

NOW = 1_900_000_000.0  # recorded "now" is read from the records; history is searched by time


def setup_site(
    tmp_path: Path, reports: dict[str, object] | None = None, **more: dict[str, object]
) -> Path:
    contacts = tmp_path / "contacts"
    contacts.write_text("198.51.100.0/24 abuse@storm.example\nAS64501 abuse@clean.example\n")
    sections: dict[str, dict[str, object]] = {
        "smtp": {"hostname": "mx.mailmoat.test"},
        "store": {"url": f"sqlite:///{tmp_path / 'store.db'}"},
        "quarantine": {"directory": str(tmp_path / "quarantine")},
        "reputation": {"prefix_table": str(PREFIXES)},
        "reports": {
            "contacts": str(contacts),
            "sender": "reports@mailmoat.test",
            **(reports or {}),
        },
        "lists": {"allow": ["192.0.2.0/24"]},
        **more,
    }
    path = tmp_path / "mailmoat.toml"
    path.write_text(toml_dumps(sections))
    return path


def store_history(config_path: Path, *records: object) -> None:
    config = load_config(config_path)

    async def go() -> None:
        store = open_store(config.store.url)
        recorder = StatsRecorder(store, config.stats, "node1")
        for item in records:
            recorder(item)  # type: ignore[arg-type]
        await recorder.flush()
        await store.close()

    asyncio.run(go())


def parse(path: Path) -> Message:
    return email.message_from_bytes(path.read_bytes(), policy=email.policy.compat32)


def test_dry_run_on_a_refused_message_writes_a_valid_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import time

    config_path = setup_site(tmp_path)
    now = time.time()
    store_history(
        config_path,
        record(
            "198.51.100.7",
            "reject",
            "score",
            now - 60,
            queue_id="REFUSED1",
            mail_from="bulk@storm.example",
            rcpts=("alice@example.org", "bob@example.org"),
            subject="Cheap pills",
            message_id="<m1@storm.example>",
            helo="bot7.storm.example",
        ),
    )
    out = tmp_path / "out"
    code = cli.main(
        ["report", "arf", "REFUSED1", "--config", str(config_path), "--dry-run", str(out)]
    )
    assert code == 0, capsys.readouterr()
    report = parse(out / "arf-REFUSED1.eml")
    assert report.get_content_type() == "multipart/report"
    assert report.get_param("report-type") == "feedback-report"
    assert report["To"] == "<abuse@storm.example>" and report["From"] == "<reports@mailmoat.test>"
    human, machine, original = report.get_payload()
    assert human.get_content_type() == "text/plain"
    assert "198.51.100.7" in human.get_payload()
    assert machine.get_content_type() == "message/feedback-report"
    (fields,) = machine.get_payload()  # parsed as header fields
    assert fields["Feedback-Type"] == "abuse"
    assert fields["User-Agent"].startswith("mailmoat/")
    assert fields["Version"] == "1"
    assert fields["Source-IP"] == "198.51.100.7"
    assert fields["Original-Mail-From"] == "<bulk@storm.example>"
    assert fields.get_all("Original-Rcpt-To") == ["<alice@example.org>", "<bob@example.org>"]
    arrival = email.utils.parsedate_to_datetime(fields["Arrival-Date"])
    assert abs(arrival.timestamp() - (now - 60)) < 1
    assert fields.get_all("Reported-Domain") == ["storm.example"]
    assert fields["Reporting-MTA"] == "dns; mx.mailmoat.test"
    # The body was not kept: the header fields we know.
    assert original.get_content_type() == "text/rfc822-headers"
    headers = email.message_from_string(original.get_payload())
    assert headers["Subject"] == "Cheap pills" and headers["Message-ID"] == "<m1@storm.example>"
    assert "[198.51.100.7]" in headers["Received"]


def test_a_quarantined_message_goes_whole_and_others_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import time

    config_path = setup_site(tmp_path)
    config = load_config(config_path)
    now = time.time()
    original = b"From: Promo <promo@other.example>\r\nSubject: Win\r\n\r\nBuy now.\r\n"
    asyncio.run(
        Quarantine(config.quarantine.directory).put(
            original,
            {"queue_id": "QUAR1", "mail_from": "x@storm.example", "rcpts": ["a@example.org"]},
        )
    )
    store_history(
        config_path,
        record(
            "203.0.113.9",
            "quarantine",
            "score",
            now - 30,
            queue_id="QUAR1",
            mail_from="x@storm.example",
        ),
        record("203.0.113.9", "accept", "delivered", now - 20, queue_id="CLEAN1"),
        record("192.0.2.5", "reject", "score", now - 10, queue_id="ALLOWED1"),
        record("127.0.0.1", "reject", "score", now - 10, queue_id="OURS1"),
        record("198.51.100.7", "reject", "relay_denied", now - 10, queue_id="RELAY1"),
    )
    out = tmp_path / "out"
    code = cli.main(
        ["report", "arf", "QUAR1", "CLEAN1", "ALLOWED1", "OURS1", "RELAY1", "NOSUCH",
         "--config", str(config_path), "--dry-run", str(out)]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == 1
    assert sorted(p.name for p in out.iterdir()) == ["arf-QUAR1.eml"]
    for queue_id in ("CLEAN1", "ALLOWED1", "OURS1", "RELAY1", "NOSUCH"):
        assert f"not reported: {queue_id}:" in captured.err
    report = parse(out / "arf-QUAR1.eml")
    assert report["To"] == "<abuse@clean.example>"  # by AS64501 from the prefix table
    machine, attached = report.get_payload()[1:]
    assert machine.get_payload()[0].get_all("Reported-Domain") == ["storm.example", "other.example"]
    assert attached.get_content_type() == "message/rfc822"
    inner = attached.get_payload()[0]
    assert inner["Subject"] == "Win" and inner.get_payload().strip() == "Buy now."


def test_sending_is_off_by_default(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config_path = setup_site(tmp_path, {"smarthost": "127.0.0.1:9"})
    assert cli.main(["report", "arf", "X", "--config", str(config_path)]) == 2
    assert "enabled = false" in capsys.readouterr().err


def test_a_bad_contact_line_is_an_error_naming_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_path = setup_site(tmp_path)
    (tmp_path / "contacts").write_text("AS1 abuse@one.example\n10.0.0.0/8 nobody\n")
    assert (
        cli.main(["report", "arf", "X", "--config", str(config_path), "--dry-run", str(tmp_path)])
        == 2
    )
    assert f"{tmp_path / 'contacts'}:2: bad contact table line" in capsys.readouterr().err
    assert cli.main(["config", "--config", str(config_path), "--check"]) == 2


def test_never_to_an_address_outside_the_table() -> None:
    with pytest.raises(DeliveryRefused):
        send_reports(
            [("Q1", "someone@else.example", b"x")],
            smarthost="127.0.0.1:9",
            sender="r@mailmoat.test",
            allowed=frozenset({"abuse@storm.example"}),
            batch_size=5,
            max_per_minute=60,
        )


@pytest.mark.integration
def test_reports_go_through_the_smarthost_per_contact(
    tmp_path: Path, smtp_sink: SmtpSink, capsys: pytest.CaptureFixture[str]
) -> None:
    import time

    config_path = setup_site(
        tmp_path,
        {"enabled": True, "smarthost": f"127.0.0.1:{smtp_sink.port}", "max_per_minute": 600},
    )
    now = time.time()
    store_history(
        config_path,
        *(
            record(f"198.51.100.{n}", "reject", "score", now - 50 + n, queue_id=f"STORM{n}")
            for n in range(1, 4)
        ),
        record("203.0.113.9", "quarantine", "score", now - 5, queue_id="CLEANAS"),
    )
    started = time.monotonic()
    code = cli.main(
        ["report", "arf", "STORM1", "STORM2", "STORM3", "CLEANAS", "--config", str(config_path)]
    )
    elapsed = time.monotonic() - started
    out = capsys.readouterr().out
    assert code == 0, out
    assert elapsed >= 3 * 60 / 600  # paced: four reports at 600 a minute
    got = smtp_sink.wait_messages(4)
    by_rcpt = sorted(
        (m.rcpt_to, json.dumps(sorted(m.data.decode().split("Source-IP: ")[1:2]))) for m in got
    )
    assert [r for r, _ in by_rcpt] == [("abuse@clean.example",)] + [("abuse@storm.example",)] * 3
    assert all(m.mail_from == "reports@mailmoat.test" for m in got)
    for message in got:
        parsed = email.message_from_bytes(message.data)
        assert parsed.get_param("report-type") == "feedback-report"
    assert "STORM2: sent to abuse@storm.example" in out
