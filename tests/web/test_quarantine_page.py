"""The quarantine page over ASGI: search, pages, the safe preview, bulk
actions (CSRF, notices by queue id, logged and counted), learning from it.

A real SQLite store and quarantine directory; the model lives in a file.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from mailmoat.classify import Classifier, FeatureConfig, load_file
from mailmoat.classify.testing import synthetic_corpus
from mailmoat.config import ClassifierConfig, Config, DeliveryConfig, QuarantineConfig, StoreConfig
from mailmoat.delivery.quarantine import Quarantine
from mailmoat.message import parse_message
from mailmoat.metrics import METRICS
from mailmoat.stats.recorder import StatsRecorder
from mailmoat.store import SqliteStore
from mailmoat.web import create_app, make_dashboard
from mailmoat.web.quarantine_view import PAGE_SIZE, QuarantineQuery, paginate, preview, select

HOSTILE = (
    b"From: <script>alert(1)</script> <evil@spam.example>\r\n"
    b"Subject: =?utf-8?q?Win_=3Cb=3Ebig=3C/b=3E?=\r\n"
    b"Content-Type: text/html\r\n\r\n"
    b"<html><body><script>alert(2)</script><img src=http://track.example/x.gif>"
    b"<p>Cheap <b>pills</b> here</p></body></html>\r\n"
)


def held(number: int) -> tuple[bytes, dict[str, object]]:
    raw = synthetic_corpus(number + 1, seed=3)[number][1]
    meta: dict[str, object] = {
        "queue_id": f"QID{number:04d}",
        "mail_from": f"sender{number}@{'spam' if number % 2 else 'ham'}.example",
        "rcpts": [f"user{number % 5}@example.org"],
        "client_ip": "192.0.2.1",
        "subject": f"message number {number}",
        "score": 11.0 + number % 3,
        "symbols": {"RULE_A": 5.0, "BAYES_SPAM": 6.0} if number % 3 == 0 else {"DNSBL_X": 11.0},
    }
    return raw, meta


@dataclass
class Site:
    app: object
    box: Quarantine
    ids: list[str]
    model: Path
    recorder: StatsRecorder

    def client(self) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app)  # type: ignore[arg-type]
        return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8025")


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    model = tmp_path / "model.bin"
    seed = Classifier.empty(FeatureConfig(hash_bits=16))
    seed.save(model)
    config = replace(
        Config(),
        store=StoreConfig(url=f"sqlite:///{tmp_path / 'store.db'}"),
        quarantine=QuarantineConfig(directory=str(tmp_path / "q")),
        delivery=DeliveryConfig(maildir=str(tmp_path / "maildir")),
        classifier=ClassifierConfig(model_path=str(model)),
    )
    box = Quarantine(config.quarantine.directory)
    ids = [await box.put(*held(n)) for n in range(120)]
    ids.append(await box.put(HOSTILE, {**held(0)[1], "queue_id": "QHOSTILE"}))
    store = SqliteStore(tmp_path / "store.db")
    recorder = StatsRecorder(store, config.stats, "n1")
    app = create_app(make_dashboard(lambda: config, store, recorder=recorder))
    yield Site(app, box, ids, model, recorder)
    await store.close()


def csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found
    return found.group(1)


def rows(html: str) -> list[str]:
    return re.findall(r'<tr data-id="[^"]+" data-queue-id="([^"]+)"', html)


def test_query_select_and_paginate() -> None:
    query = QuarantineQuery.from_params({"sender": "SPAM.example", "page": "x", "since": "bad"})
    assert query.page == 1 and query.filters() == {"sender": "SPAM.example", "since": "bad"}
    page = paginate(list(range(120)), 9, 50)  # type: ignore[arg-type]
    assert (page.number, page.pages, page.first, page.last) == (3, 3, 101, 120)
    assert paginate([], 1).first == 0 and paginate([], 1).pages == 1
    assert select([], query) == []


def test_preview_is_text_only() -> None:
    shown = preview(HOSTILE)
    assert ("Subject", "Win <b>big</b>") in shown.headers
    assert shown.source == "html"
    text = "\n".join(shown.lines)
    assert "Cheap" in text and "pills" in text
    assert "<script>" not in text and "alert(2)" not in text and "<img" not in text
    long = b"Subject: x\r\n\r\n" + b"".join(b"line %d\r\n" % i for i in range(100))
    cut = preview(long)
    assert len(cut.lines) == 40 and cut.more_lines and cut.lines[-1] == "line 39"
    assert preview(b"\xff\xfe\x00garbage").headers == []


async def test_pages_search_and_preview(site: Site) -> None:
    async with site.client() as client:
        first = await client.get("/quarantine")
        assert first.status_code == 200
        assert len(rows(first.text)) == PAGE_SIZE and "121 messages held" in first.text
        assert "1–50 of 121 · page 1 of 3" in first.text
        third = await client.get("/quarantine?page=3")
        assert len(rows(third.text)) == 21 and 'id="page-next"' not in third.text
        spam = await client.get("/quarantine", params={"sender": "@spam.example", "page": "2"})
        assert all(int(q[3:]) % 2 for q in rows(spam.text))
        assert "60 matching" in spam.text and "page=1" in spam.text  # the newer link keeps it
        by_reason = await client.get("/quarantine", params={"reason": "bayes"})
        assert "41 matching" in by_reason.text  # 40 of 120 plus the hostile copy of number 0
        by_rcpt = await client.get("/quarantine", params={"rcpt": "user3@", "subject": "9"})
        expected = {f"QID{n:04d}" for n in range(120) if n % 5 == 3 and "9" in str(n)}
        assert set(rows(by_rcpt.text)) == expected == {"QID0093", "QID0098"}
        today = await client.get(
            "/quarantine", params={"since": "2000-01-01", "until": "2000-01-02"}
        )
        assert rows(today.text) == [] and "No held message matches" in today.text

        hostile_id = site.ids[-1]
        page = await client.get(f"/quarantine/{hostile_id}/preview")
        assert page.status_code == 200
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
        assert "<script>alert" not in page.text and "track.example" not in page.text
        assert "Win &lt;b&gt;big&lt;/b&gt;" in page.text
        assert (await client.get("/quarantine/nope/preview")).status_code == 404
        assert (await client.get("/quarantine/..%2F..%2Fetc/preview")).status_code == 404


async def test_bulk_actions(site: Site, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="mailmoat.web")
    async with site.client() as client:
        token = csrf((await client.get("/quarantine")).text)
        chosen = site.ids[:3]
        refused = await client.post("/quarantine/bulk", data={"action": "delete", "id": chosen})
        assert refused.status_code == 403 and len(site.box.list()) == 121

        back = "sender=%40ham.example&page=2&notice=forged"
        form = {"csrf": token, "action": "delete", "id": [*chosen, "nope"], "back": back}
        done = await client.post("/quarantine/bulk", data=form)
        assert done.status_code == 303
        query = parse_qs(urlsplit(done.headers["location"]).query)
        assert query["sender"] == ["@ham.example"] and query["page"] == ["2"]
        assert query["notice"] == ["Deleted 3: QID0000, QID0001, QID0002."]
        assert query["error"] == ["Not deleted 1: nope (no longer held)."]
        assert len(site.box.list()) == 118
        assert "quarantine: delete queue_id=QID0001" in caplog.text

        before = load_file(site.model)
        learned_before = METRICS.pending["m:c|learn|spam"]
        spam = [site.ids[n] for n in (3, 6, 9)]
        learned = await client.post(
            "/quarantine/bulk", data={"csrf": token, "action": "learn-spam", "id": spam}
        )
        notice = parse_qs(urlsplit(learned.headers["location"]).query)["notice"][0]
        assert notice == "Learned as spam 3: QID0003, QID0006, QID0009."
        after = load_file(site.model)
        assert after.version == before.version + 1  # one save for the selection
        probe = parse_message(held(3)[0])
        assert Classifier(after).score(probe) > Classifier(before).score(probe)
        assert len(site.box.list()) == 118  # learning keeps them held

        released = await client.post(
            "/quarantine/bulk", data={"csrf": token, "action": "release", "id": site.ids[10:12]}
        )
        notice = parse_qs(urlsplit(released.headers["location"]).query)["notice"][0]
        assert notice == "Released 2: QID0010, QID0011."
        assert len(list((Path(site.box.root).parent / "maildir" / "new").iterdir())) == 2

        single = await client.post(f"/quarantine/{site.ids[12]}/delete", data={"csrf": token})
        assert "Deleted QID0012." in parse_qs(urlsplit(single.headers["location"]).query)["notice"]

    counts = site.recorder._minutes  # what the next flush writes
    totals: dict[str, int] = {}
    for minute in counts.values():
        for name, value in minute.items():
            totals[name] = totals.get(name, 0) + value
    assert totals["quarantine:delete"] == 4 and totals["quarantine:release"] == 2
    assert totals["quarantine:learn-spam"] == 3
    assert METRICS.pending["m:c|learn|spam"] - learned_before == 3
    assert totals["released"] == 2
