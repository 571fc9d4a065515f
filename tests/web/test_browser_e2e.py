"""Done-when (2): the dashboard in real headless Chromium (Debian's, driven by
playwright): log in, see the graphs reflect the mail sent, filter the history,
release a quarantined message and find it delivered in the Maildir.
Screenshots go to test-artifacts/dashboard/. Skips without chromium locally,
fails under CI=true."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from dashboard_harness import EXPECTED_MESSAGES, PASSWORD, running, send_mix

from servers import require_binary

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboard"

pytestmark = pytest.mark.integration


async def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def test_dashboard_in_chromium(tmp_path: Path) -> None:
    chromium = require_binary("/usr/bin/chromium", "chromium")
    from playwright.async_api import async_playwright, expect

    async with running(tmp_path) as gw, async_playwright() as pw:
        await send_mix(gw.port)
        browser = await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1440, "height": 900})
            # Not logged in: every page leads to the login form.
            await page.goto(gw.base_url + "/history")
            await expect(page).to_have_url(re.compile(r"/login"))
            await page.fill("#password", "wrong")
            await page.click("button[type=submit]")
            await expect(page.locator(".error")).to_contain_text("Wrong password")
            await _shot(page, "01-login-failed")
            await page.fill("#password", PASSWORD)
            await page.click("button[type=submit]")
            await expect(page).to_have_url(re.compile(r"/history$"))

            # Overview: the numbers and the graphs show the mix.
            await page.goto(gw.base_url + "/?view=day")
            await expect(page.locator("#total-messages")).to_have_text(str(EXPECTED_MESSAGES))
            await expect(page.locator("#total-tagged")).to_have_text("2")
            await expect(page.locator("#total-quarantined")).to_have_text("1")
            await expect(page.locator("#total-rejected")).to_have_text("5")
            mail = page.locator("#chart-mail svg")
            assert await mail.get_attribute("data-total") == str(EXPECTED_MESSAGES)
            assert await page.locator("#chart-mail svg rect").count() >= 4  # one per outcome
            assert await page.locator("#chart-rejects svg").get_attribute("data-total") == "5"
            for reason in ("relay_denied", "size", "protocol", "score"):
                await expect(page.locator("#reasons")).to_contain_text(reason)
            await expect(page.locator("#top-rcpt")).to_contain_text("bob@example.org")
            await _shot(page, "02-overview-day")
            await page.click("#view-week")
            await expect(page.locator("#total-messages")).to_have_text(str(EXPECTED_MESSAGES))
            assert await page.locator("#chart-mail svg").get_attribute("data-total") == "11"
            await _shot(page, "03-overview-week")

            # History: filter by free text, then by action.
            await page.goto(gw.base_url + "/history")
            assert await page.locator("#history tbody tr").count() == EXPECTED_MESSAGES
            await page.fill("#f-q", "tagged")
            await page.click("#f-apply")
            rows = page.locator("#history tbody tr")
            await expect(rows).to_have_count(2)
            await expect(rows.first).to_contain_text("tagged")
            await page.fill("#f-q", "")
            await page.select_option("#f-action", "reject")
            await page.click("#f-apply")
            await expect(rows).to_have_count(5)
            await _shot(page, "04-history-filtered")

            # A message's detail explains its symbols.
            await page.goto(gw.base_url + "/history?action=quarantine")
            await page.locator("#history tbody tr a").first.click()
            await expect(page.locator("#symbols")).to_contain_text("HDR_MISSING_MESSAGE_ID")
            await expect(page.locator("#symbols")).to_contain_text("no Message-ID header")
            await _shot(page, "05-message-detail")

            # Quarantine: release, then the message is in the Maildir.
            before = len(gw.maildir_files())
            await page.goto(gw.base_url + "/quarantine")
            await expect(page.locator("#quarantine tbody tr")).to_have_count(1)
            await _shot(page, "06-quarantine")
            await page.click("#quarantine button[data-action=release]")
            await expect(page.locator("#notice")).to_contain_text("Released")
            await expect(page.locator("#quarantine")).to_contain_text("The quarantine is empty")
            await _shot(page, "07-quarantine-released")
            files = gw.maildir_files()
            assert len(files) == before + 1
            assert b"Subject: held for review" in files[-1].read_bytes()

            # Configuration: secrets hidden.
            await page.goto(gw.base_url + "/config")
            body = await page.content()
            assert "scrypt$" not in body and "(hidden)" in body
            await _shot(page, "08-config")
        finally:
            await browser.close()
