"""The dashboard's "report" action on quarantined and refused history entries."""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from mailmoat.config import Config, ReportsConfig, StatsConfig, StoreConfig
from mailmoat.stats.recorder import StatsRecorder
from mailmoat.store.sqlite import SqliteStore
from mailmoat.web import create_app, make_dashboard
from reputation_support import record
from servers import SmtpSink

Site = tuple[httpx.AsyncClient, Callable[[ReportsConfig], None]]


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    contacts = tmp_path / "contacts"
    contacts.write_text("198.51.100.0/24 abuse@storm.example\n")
    state = {
        "config": dataclasses.replace(
            Config(),
            stats=StatsConfig(node="gw"),
            store=StoreConfig(url=f"sqlite:///{tmp_path / 'store.db'}"),
            reports=ReportsConfig(contacts=str(contacts), sender="reports@mailmoat.test"),
        )
    }
    store = SqliteStore(tmp_path / "store.db")
    recorder = StatsRecorder(store, state["config"].stats, "gw")
    now = time.time()
    recorder(record("198.51.100.7", "reject", "score", now - 5, queue_id="SPAM1", stage="data"))
    recorder(record("198.51.100.7", "accept", "delivered", now - 4, queue_id="HAM1"))
    await recorder.flush()

    def configure(reports: ReportsConfig) -> None:
        state["config"] = dataclasses.replace(state["config"], reports=reports)

    board = make_dashboard(lambda: state["config"], store)
    transport = httpx.ASGITransport(app=create_app(board))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8025") as client:
        yield client, configure
    await store.close()


async def press_report(client: httpx.AsyncClient, queue_id: str) -> str:
    page = (await client.get(f"/message/{queue_id}")).text
    csrf = re.search(r'action="/message/[^"]+/report".*?name="csrf" value="([^"]+)"', page, re.S)
    assert csrf, "no report button"
    answer = await client.post(
        f"/message/{queue_id}/report", data={"csrf": csrf.group(1)}, follow_redirects=True
    )
    assert answer.status_code == 200
    found = re.search(r'id="reported">([^<]*)<', answer.text)
    assert found
    return found.group(1)


async def test_report_is_off_by_default_and_sends_nothing(site: Site) -> None:
    client, _ = site
    assert "abuse reports are off" in await press_report(client, "SPAM1")
    assert 'data-action="report"' not in (await client.get("/message/HAM1")).text


async def test_a_post_without_the_csrf_token_is_refused(site: Site) -> None:
    client, _ = site
    assert (await client.post("/message/SPAM1/report", data={})).status_code == 403


@pytest.mark.integration
async def test_report_goes_to_the_contact_through_the_smarthost(
    site: Site, smtp_sink: SmtpSink
) -> None:
    client, configure = site
    configure(
        ReportsConfig(
            enabled=True,
            smarthost=f"127.0.0.1:{smtp_sink.port}",
            contacts=(await _contacts(client)),
            sender="reports@mailmoat.test",
        )
    )
    assert await press_report(client, "SPAM1") == "SPAM1: sent to abuse@storm.example"
    (sent,) = smtp_sink.wait_messages(1)
    assert sent.rcpt_to == ("abuse@storm.example",)
    assert b"report-type=feedback-report" in sent.data and b"Source-IP: 198.51.100.7" in sent.data


async def _contacts(client: httpx.AsyncClient) -> str:
    app = client._transport.app  # type: ignore[attr-defined]
    return str(app.state.dashboard.config().reports.contacts)
