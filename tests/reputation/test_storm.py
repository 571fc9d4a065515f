"""A storm from one simulated network through a real gateway, then silence:
``mailmoat stats --events`` and the dashboard show the campaign, the top
network and its "went dark" event."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from cluster.nodes import MAILMOAT, Node, send
from mailmoat.config import load_config
from mailmoat.store import open_store
from mailmoat.web import create_app, make_dashboard
from reputation_support import PREFIXES

pytestmark = pytest.mark.integration

GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
PITCH = (
    "Dear friend, our pharmacy offers the best prices on every product you need, "
    "order today at http://pills.storm.example/offer/{n} and save up to {n}0 percent "
    "on your next order with free shipping worldwide."
)


def events(node: Node) -> list[dict[str, object]]:
    done = subprocess.run(
        [MAILMOAT, "stats", "--events", "--json", "--config", str(node.workdir / "mailmoat.toml")],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    found: list[dict[str, object]] = json.loads(done.stdout)
    return found


async def test_a_storm_then_silence(tmp_path: Path) -> None:
    node = Node(
        "gw1",
        tmp_path,
        f"sqlite:///{tmp_path / 'gw1.db'}",
        extra=f"""
[reputation]
own_networks = ["127.0.0.1/32"]
prefix_table = "{PREFIXES}"
flush_interval = 0.2
""",
    )
    node.config_text = lambda: Node.config_text(node).replace(  # type: ignore[method-assign]
        "[stats]\n", "[stats]\nsource_silence = 4\nsource_min_spam = 5\n"
    )
    node.start()
    try:
        for n in range(12):
            body = PITCH.format(n=n) + "\r\n" + GTUBE
            code, text, stage = send(node.port, body=body, source=f"127.77.0.{5 + n % 3}")
            assert (code, stage) == (554, "data"), text
        for clean in ("Lunch at noon?", "The budget is approved.", "See you in May."):
            assert send(node.port, body=clean, source="127.88.0.1")[0] == 250
        storm_ended = time.time()
        deadline = time.monotonic() + 30
        dark: list[str] = []
        while time.monotonic() < deadline:
            texts = [str(e["text"]) for e in events(node)]
            dark = [t for t in texts if "went dark" in t]
            if len(dark) >= 2:
                break
            time.sleep(1)
    finally:
        node.stop()
    assert time.time() - storm_ended >= 4
    assert "network 127.77.0.0/24 went dark (12 spam messages)" in dark
    assert "AS64502 went dark (12 spam messages)" in dark
    assert "network 127.77.0.0/24 appeared (12 spam messages)" in texts
    assert not any("127.88" in t or "AS64503" in t for t in texts)  # clean network: no event
    plain = subprocess.run(
        [MAILMOAT, "stats", "--events", "--config", str(node.workdir / "mailmoat.toml")],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    assert "network 127.77.0.0/24 went dark" in plain

    config = load_config(node.workdir / "mailmoat.toml")
    store = open_store(config.store.url)
    board = make_dashboard(lambda: config, store)
    transport = httpx.ASGITransport(app=create_app(board))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8025") as client:
        overview = (await client.get("/")).text
        assert "network 127.77.0.0/24 went dark" in overview
        page = (await client.get("/campaigns?sort=last")).text
        rows = re.findall(r'<tr data-campaign="([0-9a-f]+)">(.*?)</tr>', page, re.S)
        assert len(rows) == 1, page  # the clean ones are too short to fingerprint
        campaign_id, row = rows[0]
        assert "12</td>" in row and "Cheap" not in row
        assert 'data-source="net:127.77.0.0/24"' in page and 'data-source="as:AS64502"' in page
        detail = (await client.get(f"/campaigns/{campaign_id}")).text
        assert "127.77.0.0/24" in detail and "http://pills.storm.example/offer/" in detail
        queue_ids = re.findall(r'<a href="/message/([^"]+)">', detail)
        assert len(queue_ids) == 12
        message = await client.get(f"/message/{queue_ids[0]}")
        assert message.status_code == 200 and "127.77.0." in message.text
        listing = (await client.get("/api/campaigns")).json()
        (storm,) = [c for c in listing["campaigns"] if c["id"] == campaign_id]
        assert storm["sources"] == {"127.77.0.0/24": 12}
        assert storm["verdicts"] == {"reject": 12} and storm["spam_share"] == 1.0
        assert storm["subject"] == "cluster" and len(storm["urls"]) == 1
    await store.close()
