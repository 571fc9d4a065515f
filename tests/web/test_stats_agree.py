"""Done-when (1): a known mix of mail through the real gateway on loopback; the
counters, the history, ``mailmoat stats``, ``/metrics`` and the JSON API must
all agree with what was sent."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
from dashboard_harness import (
    EXPECTED_ACTIONS,
    EXPECTED_CONNECTIONS,
    EXPECTED_MESSAGES,
    EXPECTED_REJECTS,
    NODE,
    PASSWORD,
    running,
    send_mix,
)

from mailmoat.stats import Filters, read_totals, search

MAILMOAT = [sys.executable, "-m", "mailmoat"]


def _metric(text: str, name: str, **labels: str) -> float:
    wanted = {"node": NODE, **labels}
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if match:
            found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
            if found == wanted:
                return float(match.group(2))
    return 0.0


async def test_counters_history_cli_metrics_and_api_agree(tmp_path: Path) -> None:
    async with running(tmp_path) as gw:
        replies = await send_mix(gw.port)
        by_label = {label: reply for label, reply in replies}
        assert by_label["accept"].startswith("250")
        assert by_label["relay"].startswith("554")
        assert by_label["size"].startswith("552")
        assert by_label["reject"].startswith("554")
        assert by_label["protocol"].startswith("521")
        await asyncio.sleep(0.1)  # the last session records after its reply
        await gw.recorder.flush()
        store = gw.gateway.services.store
        now = time.time()

        # 1. the counters in the store
        totals = await read_totals(store, now - 3600, now + 1, now=now)
        assert totals.nodes == [NODE]
        assert totals.messages == EXPECTED_MESSAGES
        assert {a: totals.action(a) for a in EXPECTED_ACTIONS} == EXPECTED_ACTIONS
        assert totals.by_prefix("rej:") == EXPECTED_REJECTS
        assert totals.counts["connections"] == EXPECTED_CONNECTIONS

        # 2. the history: every transaction, searchable
        entries = await search(store, Filters(), start=now - 3600, end=now + 1)
        assert len(entries) == EXPECTED_MESSAGES
        tagged = await search(store, Filters(action="add_header"), start=now - 3600, end=now + 1)
        assert sorted(e["subject"] for e in tagged) == [
            "tagged one (no date)",
            "tagged two (no date)",
        ]
        assert all("HDR_MISSING_DATE" in e["symbols"] for e in tagged)
        relay = await search(store, Filters(q="elsewhere.example"), start=now - 3600, end=now + 1)
        assert {e["reason"] for e in relay} == {"relay_denied"} and len(relay) == 2
        assert all(e["helo"] == "mail.sender.example" for e in entries if e["stage"] != "connect")

        # 3. `mailmoat stats --json` in its own process, from the same store
        cli = await asyncio.to_thread(
            subprocess.run,
            [*MAILMOAT, "stats", "--json", "--since", "1h", "--config", str(gw.config_path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert cli.returncode == 0, cli.stderr
        data = json.loads(cli.stdout)
        assert data["messages"] == EXPECTED_MESSAGES
        assert {a: data["actions"][a] for a in EXPECTED_ACTIONS} == EXPECTED_ACTIONS
        assert data["rejects"] == EXPECTED_REJECTS
        assert data["connections"] == EXPECTED_CONNECTIONS
        assert data["spam"] == 2 + 1 + 1  # tagged + quarantined + rejected on score
        text = await asyncio.to_thread(
            subprocess.run,
            [*MAILMOAT, "stats", "--config", str(gw.config_path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert re.search(r"relay_denied\s+2\b", text.stdout), text.stdout
        assert re.search(r"quarantined\s+1\b", text.stdout)

        # 4. /metrics and 5. the JSON API, over HTTP from the running dashboard
        async with httpx.AsyncClient(base_url=gw.base_url, auth=("admin", PASSWORD)) as web:
            metrics = (await web.get("/metrics")).text
            for action, count in EXPECTED_ACTIONS.items():
                assert _metric(metrics, "mailmoat_messages_total", action=action) == count
            for reason, count in EXPECTED_REJECTS.items():
                assert _metric(metrics, "mailmoat_rejects_total", reason=reason) == count
            assert _metric(metrics, "mailmoat_connections_total") == EXPECTED_CONNECTIONS
            assert _metric(metrics, "mailmoat_quarantine_messages") == 1

            api = (await web.get("/api/summary", params={"since": "1h"})).json()
            assert {k: api[k] for k in ("messages", "actions", "rejects", "connections")} == {
                k: data[k] for k in ("messages", "actions", "rejects", "connections")
            }
            series = (await web.get("/api/series", params={"view": "day"})).json()
            assert sum(sum(v) for k, v in series["series"].items() if k.startswith("msg:")) == 11
            hist = (await web.get("/api/history", params={"action": "quarantine"})).json()
            assert [e["subject"] for e in hist["entries"]] == ["held for review"]
            queue_id = hist["entries"][0]["queue_id"]
            detail = (await web.get(f"/api/message/{queue_id}")).json()
            assert detail["entries"][0]["symbols"]["HDR_MISSING_MESSAGE_ID"] == 12.0
            quarantine = (await web.get("/api/quarantine")).json()
            assert [m["queue_id"] for m in quarantine["messages"]] == [queue_id]
            unauthenticated = await httpx.AsyncClient(base_url=gw.base_url).get("/api/summary")
            assert unauthenticated.status_code == 401

        # 6. "learn as spam" reaches the classifier (a logged-in session + CSRF token)
        async with httpx.AsyncClient(base_url=gw.base_url, timeout=120) as browser:
            login = await browser.get("/login")
            token = re.search(r'name="csrf" value="(\w+)"', login.text)
            assert token is not None
            await browser.post("/login", data={"password": PASSWORD, "csrf": token.group(1)})
            page = await browser.get("/quarantine")
            token = re.search(r'name="csrf" value="(\w+)"', page.text)
            assert token is not None
            message_id = quarantine["messages"][0]["id"]
            learned = await browser.post(
                f"/api/quarantine/{message_id}/learn-spam", headers={"X-CSRF-Token": token.group(1)}
            )
            assert learned.json() == {"ok": True, "result": learned.json()["result"]}
            assert "learned as spam" in learned.json()["result"]
