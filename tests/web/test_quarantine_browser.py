"""Done-when (quarantine): 500 held messages in real headless Chromium.

The dashboard (uvicorn on loopback, releasing to Postfix's smtp-sink as its
upstream) shows them 50 a page; the test pages through all ten pages, comes
back to one, selects the whole page with the header checkbox and releases it
with the bulk button, which stays in view at 1440x900. smtp-sink must then
hold exactly those 50 messages, and the quarantine the other 450.
Screenshots go to test-artifacts/dashboard/. Skips without chromium
locally, fails under CI=true.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest
from test_browser_e2e import CHROMIUM_ARGS, _shot

from mailmoat.config import Config, QuarantineConfig, RelayConfig, StoreConfig, WebConfig
from mailmoat.delivery.quarantine import Quarantine
from mailmoat.store import SqliteStore
from mailmoat.web.auth import hash_password
from mailmoat.web.server import start_dashboard
from servers import SmtpSink, require_binary

pytestmark = pytest.mark.integration

PASSWORD = "quarantine test password"
HELD = 500


async def test_page_through_500_and_bulk_release_50(tmp_path: Path, smtp_sink: SmtpSink) -> None:
    chromium = require_binary("/usr/bin/chromium", "chromium")
    from playwright.async_api import async_playwright, expect

    config = replace(
        Config(),
        relay=RelayConfig(domains=("example.org",), upstream=smtp_sink.address, connect_timeout=5),
        store=StoreConfig(url=f"sqlite:///{tmp_path / 'store.db'}"),
        quarantine=QuarantineConfig(directory=str(tmp_path / "quarantine")),
        web=WebConfig(listen="127.0.0.1:0", password_hash=hash_password(PASSWORD)),
    )
    box = Quarantine(config.quarantine.directory)
    for number in range(HELD):
        raw = (
            f"From: sender{number}@spam.example\r\nTo: user@example.org\r\n"
            f"Subject: held {number:04d}\r\nMessage-ID: <{number}@spam.example>\r\n\r\n"
            f"body of message {number}\r\n"
        ).encode()
        meta: dict[str, object] = {
            "queue_id": f"Q{number:04d}",
            "mail_from": f"sender{number}@spam.example",
            "rcpts": ["user@example.org"],
            "client_ip": "192.0.2.9",
            "subject": f"held {number:04d}",
            "score": 12.5,
            "symbols": {"DNSBL_TEST": 12.5},
        }
        await box.put(raw, meta)
    store = SqliteStore(tmp_path / "store.db")
    web = await start_dashboard(lambda: config, store)
    assert web is not None
    base = f"http://127.0.0.1:{web.port}"
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            try:
                page = await browser.new_page(viewport={"width": 1440, "height": 900})
                await page.goto(base + "/quarantine")
                await page.fill("#password", PASSWORD)
                await page.click("button[type=submit]")
                await expect(page).to_have_url(re.compile(r"/quarantine$"))
                rows = page.locator("#quarantine tbody tr")
                seen: list[str] = []
                for number in range(1, 11):
                    info = f"page {number} of 10"
                    await expect(page.locator("#page-info")).to_contain_text(info)
                    await expect(rows).to_have_count(50)
                    seen += [
                        await row.get_attribute("data-queue-id") or "" for row in await rows.all()
                    ]
                    if number == 1:
                        await _shot(page, "10-quarantine-500")
                    if number < 10:
                        await page.click("#page-next")
                assert await page.locator("#page-next").count() == 0
                assert sorted(seen) == [f"Q{n:04d}" for n in range(HELD)]  # each once

                for _ in range(6):  # back to page 4
                    await page.click("#page-prev")
                await expect(page.locator("#page-info")).to_contain_text("151–200 of 500")
                chosen = {await r.get_attribute("data-queue-id") for r in await rows.all()}
                assert len(chosen) == 50
                await page.check("#select-all")
                assert await page.locator("input.pick:checked").count() == 50
                await expect(page.locator("#bulk-release")).to_be_in_viewport()
                await page.click("#bulk-release")
                notice = page.locator("#notice")
                await expect(notice).to_contain_text("Released 50:", timeout=60_000)
                await expect(page.locator("#q-count")).to_contain_text("450 messages held")
                # Back on the same page number, now showing the next 50.
                await expect(page.locator("#page-info")).to_contain_text("page 4 of 9")
                await _shot(page, "11-quarantine-bulk-released")
            finally:
                await browser.close()
    finally:
        await web.stop()
        await store.close()

    got = smtp_sink.messages()
    subjects = {re.search(rb"Subject: held (\d+)", m.data).group(1).decode() for m in got}  # type: ignore[union-attr]
    assert len(got) == 50
    assert {f"Q{s}" for s in subjects} == chosen
    assert all(m.rcpt_to == ("user@example.org",) for m in got)
    left = {item.queue_id for item in box.list()}
    assert len(left) == 450 and not left & chosen
