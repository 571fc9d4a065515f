"""Dashboard security: binding rule, password hashes, login, cookie, CSRF, secrets."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest

from mailmoat.config import Config, ConfigError, StoreConfig, WebConfig
from mailmoat.store import SqliteStore
from mailmoat.web import create_app, hash_password, make_dashboard, verify_password
from mailmoat.web.auth import check_bind

PASSWORD = "s3cret-pass"
HASH = hash_password(PASSWORD)


@pytest.mark.parametrize(
    ("listen", "password_hash", "ok"),
    [
        ("127.0.0.1:8025", "", True),
        ("[::1]:8025", "", True),
        ("localhost:8025", "", True),
        ("0.0.0.0:8025", "", False),
        ("192.0.2.10:8025", "", False),
        ("0.0.0.0:8025", HASH, True),
        ("0.0.0.0:8025", "plaintext-password", False),
    ],
)
def test_check_bind(listen: str, password_hash: str, ok: bool) -> None:
    web = WebConfig(listen=listen, password_hash=password_hash)
    if ok:
        check_bind(web)
    else:
        with pytest.raises(ConfigError, match="web\\."):
            check_bind(web)


def test_password_hash_roundtrip() -> None:
    assert HASH.startswith("scrypt$") and PASSWORD not in HASH
    assert verify_password(PASSWORD, HASH)
    assert not verify_password("wrong", HASH)
    assert not verify_password(PASSWORD, "scrypt$garbage")
    assert hash_password(PASSWORD) != HASH  # salted


@pytest.fixture
async def client(tmp_path: object) -> AsyncIterator[httpx.AsyncClient]:
    config = Config(
        web=WebConfig(password_hash=HASH, secret_key="cookie-signing-key"),
        store=StoreConfig(url="sqlite://:memory:"),
    )
    config = replace(config, quarantine=replace(config.quarantine, directory=f"{tmp_path}/q"))
    store = SqliteStore(":memory:")
    app = create_app(make_dashboard(lambda: config, store))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8025") as c:
        yield c
    await store.close()


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert match, html
    return match.group(1)


async def _login(client: httpx.AsyncClient) -> str:
    page = await client.get("/login")
    response = await client.post(
        "/login", data={"password": PASSWORD, "csrf": _csrf(page.text), "next": "/history"}
    )
    assert response.status_code == 303 and response.headers["location"] == "/history"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    return _csrf((await client.get("/quarantine")).text)


async def test_pages_need_login(client: httpx.AsyncClient) -> None:
    response = await client.get("/history")
    assert response.status_code == 303 and response.headers["location"].startswith("/login")
    assert (await client.get("/api/summary")).status_code == 401
    assert (await client.get("/metrics")).status_code == 401
    assert (await client.get("/metrics", auth=("x", PASSWORD))).status_code == 200
    assert (await client.get("/metrics", auth=("x", "wrong"))).status_code == 401


async def test_wrong_password_and_login_csrf(client: httpx.AsyncClient) -> None:
    page = await client.get("/login")
    wrong = await client.post("/login", data={"password": "nope", "csrf": _csrf(page.text)})
    assert wrong.status_code == 401 and "Wrong password" in wrong.text
    no_token = await client.post("/login", data={"password": PASSWORD})
    assert no_token.status_code == 403


async def test_state_changes_need_csrf_and_same_origin(client: httpx.AsyncClient) -> None:
    token = await _login(client)
    assert (await client.get("/")).status_code == 200
    missing = await client.post("/quarantine/x/delete", data={})
    assert missing.status_code == 403
    forged = await client.post("/quarantine/x/delete", data={"csrf": "0" * 40})
    assert forged.status_code == 403
    cross = await client.post(
        "/quarantine/x/delete", data={"csrf": token}, headers={"Origin": "http://evil.example"}
    )
    assert cross.status_code == 403
    ok = await client.post("/quarantine/x/delete", data={"csrf": token})
    assert ok.status_code == 303 and "no+quarantined+message" in ok.headers["location"]
    api = await client.post("/api/quarantine/x/delete", headers={"X-CSRF-Token": token})
    assert api.status_code == 409 and api.json()["ok"] is False
    assert (await client.post("/api/quarantine/x/delete")).status_code == 403


async def test_logout_ends_the_session(client: httpx.AsyncClient) -> None:
    token = await _login(client)
    response = await client.post("/logout", data={"csrf": token})
    assert response.status_code == 303
    client.cookies.clear()
    assert (await client.get("/")).status_code == 303


async def test_config_page_hides_secrets(client: httpx.AsyncClient) -> None:
    await _login(client)
    page = (await client.get("/config")).text
    assert "cookie-signing-key" not in page and "scrypt$" not in page
    assert "(hidden)" in page and "listen" in page
