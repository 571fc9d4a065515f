"""Dashboard attacks: DNS rebinding, password guessing, stolen cookies, bad ids.

The dashboard app is driven over ASGI (so a test can send any Host, Origin
and client address) against a real SQLite store and a real quarantine
directory; the rebinding test also goes through the real uvicorn server.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest

from mailmoat.config import Config, QuarantineConfig, StoreConfig, WebConfig
from mailmoat.delivery.quarantine import Quarantine
from mailmoat.store import SqliteStore
from mailmoat.web import create_app, hash_password, make_dashboard
from mailmoat.web.server import start_dashboard
from mailmoat.web.throttle import BASE_DELAY, FORGET_AFTER, MAX_DELAY, LoginThrottle

PASSWORD = "s3cret-pass"
HASH = hash_password(PASSWORD)
MESSAGE = b"From: a@sender.example\r\nSubject: held\r\n\r\nbody\r\n"
META: dict[str, object] = {
    "queue_id": "Q1",
    "mail_from": "a@sender.example",
    "rcpts": ["bob@example.org"],
    "client_ip": "192.0.2.1",
    "subject": "held",
    "score": 12.0,
    "symbols": {},
}


def _config(tmp_path: Path, **web: object) -> Config:
    settings: dict[str, object] = {"password_hash": HASH, "secret_key": "k" * 32, **web}
    return replace(
        Config(),
        web=WebConfig(**settings),  # type: ignore[arg-type]
        store=StoreConfig(url=f"sqlite:///{tmp_path / 'store.db'}"),
        quarantine=QuarantineConfig(directory=str(tmp_path / "q")),
    )


@dataclass
class Site:
    config: Config
    store: SqliteStore
    app: object

    def client(self, host: str = "127.0.0.1:8025", address: str = "127.0.0.1") -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app, client=(address, 40000))  # type: ignore[arg-type]
        return httpx.AsyncClient(transport=transport, base_url=f"http://{host}")


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    config = _config(tmp_path, allowed_hosts=("dash.example.org", ".corp.example"))
    store = SqliteStore(tmp_path / "store.db")
    app = create_app(make_dashboard(lambda: config, store))
    yield Site(config, store, app)
    await store.close()


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert match, html
    return match.group(1)


async def _login(client: httpx.AsyncClient, password: str = PASSWORD) -> httpx.Response:
    page = await client.get("/login")
    return await client.post("/login", data={"password": password, "csrf": _csrf(page.text)})


# -- DNS rebinding: Host and Origin ------------------------------------------------


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("127.0.0.1:8025", True),
        ("localhost:8025", True),
        ("[::1]:8025", True),
        ("127.0.0.2", True),
        ("dash.example.org", True),
        ("DASH.example.org:8443", True),
        ("a.b.corp.example", True),
        ("corp.example", True),
        ("rebind.attacker.example:8025", False),
        ("evilcorp.example", False),
        ("dash.example.org.attacker.example", False),
        ("192.0.2.10:8025", False),
        ("", False),
        ("127.0.0.1:notaport", False),
    ],
)
async def test_host_header_must_be_an_allowed_host(site: Site, host: str, allowed: bool) -> None:
    async with site.client() as client:
        response = await client.get("/login", headers={"Host": host})
    assert response.status_code == (200 if allowed else 400), response.text


async def test_rebound_name_cannot_use_an_open_dashboard(tmp_path: Path) -> None:
    """No password (loopback only): a page on a name rebound to 127.0.0.1 is
    same-origin with what it fetches, so it could read the CSRF token and
    delete mail; through the real server its own name in Host gets 400."""
    config = _config(tmp_path, password_hash="", listen="127.0.0.1:0")
    box = Quarantine(config.quarantine.directory)
    message_id = await box.put(MESSAGE, META)
    store = SqliteStore(tmp_path / "store.db")
    server = await start_dashboard(lambda: config, store)
    assert server is not None
    try:
        url = f"http://{server.address}"
        origin = f"http://rebind.attacker.example:{server.port}"
        rebound = {"Host": f"rebind.attacker.example:{server.port}"}
        async with httpx.AsyncClient(timeout=10) as attacker:
            stolen = await attacker.get(f"{url}/api/quarantine", headers=rebound)
            page = await attacker.get(f"{url}/quarantine", headers=rebound)
            token = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
            posted = await attacker.post(
                f"{url}/quarantine/{message_id}/delete",
                data={"csrf": token.group(1) if token else ""},
                headers={**rebound, "Origin": origin},
            )
        async with httpx.AsyncClient(timeout=10) as admin:
            own = await admin.get(f"{url}/api/quarantine")
    finally:
        await server.stop()
        await store.close()
    assert stolen.status_code == 400 and message_id not in stolen.text
    assert page.status_code == 400 and token is None
    assert posted.status_code == 400
    assert box.get(message_id) is not None
    assert own.status_code == 200 and own.json()["count"] == 1


async def test_origin_is_judged_against_the_allowed_hosts(site: Site) -> None:
    async with site.client() as client:
        await _login(client)
        token = _csrf((await client.get("/quarantine")).text)

        async def post(origin: str) -> int:
            response = await client.post(
                "/quarantine/x/delete", data={"csrf": token}, headers={"Origin": origin}
            )
            return response.status_code

        assert await post("http://evil.example") == 403
        assert await post("null") == 403
        assert await post("http://127.0.0.1:8025.evil.example") == 403
        assert await post("http://localhost:8025") == 303
        assert await post("https://dash.example.org") == 303
    # The Host an attacker chooses does not make its Origin acceptable.
    async with site.client(host="dash.example.org") as client:
        response = await client.post(
            "/quarantine/x/delete", headers={"Origin": "http://evil.example"}
        )
    assert response.status_code == 403


# -- password guessing -------------------------------------------------------------


async def test_failed_logins_are_throttled_per_client_address(site: Site) -> None:
    async with site.client(address="192.0.2.7") as attacker:
        codes = [(await _login(attacker, "guess")).status_code for _ in range(5)]
        assert codes == [401] * 5
        blocked = await _login(attacker, "guess")
        assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) > 0
        # Even the right password waits: the lockout does not leak it.
        right = await _login(attacker)
        assert right.status_code == 429
        api = await attacker.get("/api/summary", auth=("admin", PASSWORD))
        assert api.status_code == 429 and "retry-after" in api.headers
    async with site.client(address="192.0.2.8") as admin:
        response = await _login(admin)
        assert response.status_code == 303 and response.headers["location"] == "/"


def test_throttle_backs_off_exponentially_and_forgets() -> None:
    now = [1000.0]
    throttle = LoginThrottle(3, clock=lambda: now[0])
    assert [throttle.failed("a") for _ in range(2)] == [0.0, 0.0]
    assert throttle.retry_after("a") == 0.0
    assert throttle.failed("a") == BASE_DELAY
    assert throttle.retry_after("a") == BASE_DELAY
    now[0] += BASE_DELAY
    assert throttle.retry_after("a") == 0.0
    assert throttle.failed("a") == 2 * BASE_DELAY
    for _ in range(30):
        delay = throttle.failed("a")
    assert delay == MAX_DELAY
    assert throttle.retry_after("b") == 0.0
    now[0] += FORGET_AFTER + 1
    assert throttle.retry_after("a") == 0.0 and throttle.failed("a") == 0.0
    throttle.failed("a")
    throttle.succeeded("a")
    assert [throttle.failed("a") for _ in range(3)] == [0.0, 0.0, BASE_DELAY]


# -- logout revokes ----------------------------------------------------------------


async def test_cookie_copied_before_logout_is_refused_after(site: Site) -> None:
    async with site.client() as client:
        assert (await _login(client)).status_code == 303
        copied = dict(client.cookies)
        assert (await client.get("/quarantine")).status_code == 200
        token = _csrf((await client.get("/quarantine")).text)
        assert (await client.post("/logout", data={"csrf": token})).status_code == 303
    async with site.client() as thief:
        thief.cookies.update(copied)
        page = await thief.get("/quarantine")
        assert page.status_code == 303 and page.headers["location"].startswith("/login")
        assert (await thief.get("/api/quarantine")).status_code == 401
    # A new login works as before.
    async with site.client() as client:
        assert (await _login(client)).status_code == 303
        assert (await client.get("/quarantine")).status_code == 200


# -- ids: NUL bytes, envelope names ----------------------------------------------


async def test_nul_byte_in_an_id_is_refused_not_a_crash(site: Site) -> None:
    async with site.client() as client:
        await _login(client)
        token = _csrf((await client.get("/quarantine")).text)
        for action in ("delete", "release", "learn-spam"):
            page = await client.post(f"/quarantine/a%00b/{action}", data={"csrf": token})
            assert page.status_code == 303 and "error=" in page.headers["location"], action
            api = await client.post(
                f"/api/quarantine/a%00b/{action}", headers={"X-CSRF-Token": token}
            )
            assert api.status_code == 409, (action, api.text)
        assert (await client.get("/message/a%00b")).status_code == 404
        assert (await client.get("/api/message/a%00b")).status_code == 404
        assert (await client.get("/history?q=a%00b&client_ip=%00")).status_code == 200


async def test_deleting_by_the_envelope_name_leaves_no_orphan(site: Site) -> None:
    box = Quarantine(site.config.quarantine.directory)
    message_id = await box.put(MESSAGE, META)
    new = Path(site.config.quarantine.directory) / "new"
    async with site.client() as client:
        await _login(client)
        token = _csrf((await client.get("/quarantine")).text)
        headers = {"X-CSRF-Token": token}
        wrong = await client.post(f"/api/quarantine/{message_id}.json/delete", headers=headers)
        assert wrong.status_code == 409
        assert sorted(p.name for p in new.iterdir()) == [message_id, f"{message_id}.json"]
        listed = (await client.get("/api/quarantine")).json()
        assert [m["id"] for m in listed["messages"]] == [message_id]
        done = await client.post(f"/api/quarantine/{message_id}/delete", headers=headers)
        assert done.status_code == 200 and done.json()["ok"] is True
    assert list(new.iterdir()) == []


async def test_expire_removes_message_files_left_without_envelope(tmp_path: Path) -> None:
    box = Quarantine(tmp_path / "q", retention_days=1)
    kept = await box.put(MESSAGE, META)
    orphan = await box.put(MESSAGE, META)
    (tmp_path / "q" / "new" / f"{orphan}.json").unlink()  # a crash between the unlinks
    assert box.expire(now=None) == 0
    assert (tmp_path / "q" / "new" / orphan).exists()  # younger than the retention
    assert box.expire(now=10**10) == 1
    assert list((tmp_path / "q" / "new").iterdir()) == []
    assert box.get(kept) is None


async def test_cross_site_subresources_are_refused(tmp_path: Path) -> None:
    """An ``<img src=".../history?since=30y">`` on another site reaches an
    open dashboard with Fetch Metadata saying so; a followed link does not."""
    config = _config(tmp_path, password_hash="")
    store = SqliteStore(tmp_path / "store.db")
    app = create_app(make_dashboard(lambda: config, store))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8025") as client:
        image = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"}
        link = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}
        own = {"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors"}
        assert (await client.get("/history?since=30y", headers=image)).status_code == 403
        assert (await client.get("/api/history", headers=image)).status_code == 403
        assert (await client.get("/history", headers=link)).status_code == 200
        assert (await client.get("/api/history", headers=own)).status_code == 200
    await store.close()
