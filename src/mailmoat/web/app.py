"""The dashboard application: Starlette routes, login, session and CSRF guard.

Contract: ``create_app(dashboard)`` returns an ASGI app. A request whose
``Host`` is not an allowed host (``hosts.AllowedHosts``: localhost, loopback,
the listen host, ``web.allowed_hosts``) gets 400, so a DNS-rebound name
cannot reach it, and neither can another site's ``<img>``, script or fetch
(``Sec-Fetch-Site: cross-site`` other than a navigation: 403). Every page
and API call needs an authenticated session (signed cookie after
``/login``, not revoked by ``/logout``) or, for GET requests to ``/api/``
and ``/metrics``, HTTP Basic with the same password; without a configured
password everything is open (the server then binds to loopback only, see
``auth.check_bind``). Password checks run in worker threads, a few at once,
and a client address with too many failures gets 429 (``throttle``). Every
POST must carry the session's CSRF token (form field ``csrf`` or header
``X-CSRF-Token``; except ``POST /api/learn/*``, which needs a bearer token
instead, see ``learn_api``) and, when the browser sends ``Origin``, come from an
allowed host; otherwise 403. The cookie is HttpOnly, SameSite=Strict.
Passwords and secrets never reach a page or a log line.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from mailmoat.classify.holder import ModelHolder
from mailmoat.config import Config, WebConfig
from mailmoat.stats.recorder import StatsRecorder
from mailmoat.store.base import Store, StoreError
from mailmoat.web.auth import COOKIE, SessionData, Sessions
from mailmoat.web.history_reader import HistoryReader
from mailmoat.web.hosts import AllowedHosts
from mailmoat.web.throttle import Busy, LoginThrottle, PasswordChecker

log = logging.getLogger("mailmoat.web")

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))


def _datetime(ts: float, seconds: bool = False) -> str:
    return time.strftime("%Y-%m-%d %H:%M" + (":%S" if seconds else ""), time.gmtime(ts))


templates.env.filters["datetime"] = _datetime
_PUBLIC = ("/login", "/static/", "/favicon.ico")
# Authenticated by their own bearer token (learn_api), not by a session.
_TOKEN_AUTH = ("/api/learn/",)


@dataclass
class Dashboard:
    """What the web app works with; ``config`` is read per request so a
    reloaded gateway config applies at once."""

    config: Callable[[], Config]
    store: Store
    node: str
    sessions: Sessions
    recorder: StatsRecorder | None = None
    clock: Callable[[], float] = time.time
    # The process's model holder: a learn publishes the saved model to it.
    model: ModelHolder | None = None
    history: HistoryReader = field(default_factory=HistoryReader)
    passwords: PasswordChecker = field(default_factory=PasswordChecker)
    throttle: LoginThrottle = field(default_factory=lambda: LoginThrottle(5))

    def allowed_hosts(self) -> AllowedHosts:
        return _allowed_hosts(self.config().web)

    async def password_ok(self, client: str, password: str) -> bool | float:
        """Check a password for ``client`` (an address): True, False, or the
        seconds it must wait first (throttled, or too many checks queued)."""
        self.throttle.max_failures = max(1, self.config().web.max_login_failures)
        wait = self.throttle.retry_after(client)
        if wait > 0:
            return wait
        try:
            ok = await self.passwords.check(
                password,
                self.sessions.password_hash,
                lambda: self.throttle.retry_after(client) <= 0,
            )
        except Busy:
            return 1.0
        if ok is None:
            return max(1.0, self.throttle.retry_after(client))
        if ok:
            self.throttle.succeeded(client)
            return True
        if self.throttle.failed(client):
            log.warning("dashboard: too many failed logins from %s, throttled", client)
        return False

    async def fresh(self) -> None:
        """Flush the in-process recorder so pages show the very latest."""
        if self.recorder is not None:
            await self.recorder.flush()


@functools.lru_cache(maxsize=8)
def _allowed_hosts(web: WebConfig) -> AllowedHosts:
    return AllowedHosts.from_config(web)


def dashboard_of(request: Request) -> Dashboard:
    board: Dashboard = request.app.state.dashboard
    return board


async def fresh_dashboard_of(request: Request) -> Dashboard:
    """The dashboard, its in-process statistics flushed (``Dashboard.fresh``)."""
    board = dashboard_of(request)
    await board.fresh()
    return board


def node_param(request: Request) -> str | None:
    """The ``node`` query parameter; None (all nodes) when absent or empty."""
    return request.query_params.get("node") or None


def session_of(request: Request) -> SessionData:
    session: SessionData = request.state.session
    return session


def render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    board = dashboard_of(request)
    session = session_of(request)
    base = {
        "csrf": board.sessions.csrf_token(session),
        "logged_in": board.sessions.authenticated(session) and not board.sessions.open_access,
        "node": board.node,
        "path": request.url.path,
        "now": board.clock(),
    }
    return templates.TemplateResponse(request, name, {**base, **context}, status_code=status)


async def form_with_csrf(request: Request) -> dict[str, str]:
    """The POSTed form, after checking its CSRF token (raises 403)."""
    form = await request.form()
    data = {k: str(v) for k, v in form.items() if isinstance(v, str)}
    token = data.get("csrf") or request.headers.get("x-csrf-token", "")
    board = dashboard_of(request)
    if not board.sessions.csrf_ok(session_of(request), token):
        raise CsrfError
    return data


class CsrfError(Exception):
    pass


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def _basic_auth(request: Request, board: Dashboard) -> bool | float:
    """HTTP Basic credentials: True, False, or seconds to wait (throttled)."""
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("basic "):
        return False
    try:
        _user, _, password = base64.b64decode(header[6:]).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        return False
    return await board.password_ok(client_address(request), password)


def _too_many(wait: float, api: bool) -> Response:
    headers = {"Retry-After": str(max(1, round(wait)))}
    text = "too many failed logins: try again later"
    if api:
        return JSONResponse({"error": text}, status_code=429, headers=headers)
    return PlainTextResponse(text, status_code=429, headers=headers)


def _origin_ok(request: Request, hosts: AllowedHosts) -> bool:
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return origin != "null" and hosts.permits_origin(origin)


def _cross_site_subresource(request: Request) -> bool:
    """An ``<img>``, script or fetch from another site (browsers say so in
    Fetch Metadata); following a link from elsewhere stays allowed."""
    headers = request.headers
    return headers.get("sec-fetch-site") == "cross-site" and headers.get(
        "sec-fetch-mode", "navigate"
    ) not in ("navigate", "nested-navigate")


async def _load_session(board: Dashboard, cookie: str | None) -> SessionData:
    sessions = board.sessions
    session = sessions.load(cookie)
    if (
        session.auth
        and not sessions.open_access
        and await sessions.is_revoked(board.store, session)
    ):
        session = sessions.load(None)
    return session


class Guard(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        board = dashboard_of(request)
        sessions = board.sessions
        hosts = board.allowed_hosts()
        if not hosts.permits_host(request.headers.get("host")):
            return PlainTextResponse(
                "unknown Host: add it to web.allowed_hosts to reach the dashboard by that name",
                status_code=400,
            )
        if _cross_site_subresource(request):
            return PlainTextResponse("cross-site request refused", status_code=403)
        session = await _load_session(board, request.cookies.get(COOKIE))
        request.state.session = session
        path = request.url.path
        api = path.startswith("/api/") or path == "/metrics"
        if request.method not in ("GET", "HEAD") and not _origin_ok(request, hosts):
            return PlainTextResponse("cross-origin request refused", status_code=403)
        public = path.startswith(_PUBLIC) or (
            request.method == "POST" and path.startswith(_TOKEN_AUTH)
        )
        if not public and not sessions.authenticated(session):
            basic = request.method in ("GET", "HEAD") and api
            verdict = await _basic_auth(request, board) if basic else False
            if not isinstance(verdict, bool):
                return _too_many(verdict, api)
            if not verdict:
                if api:
                    return JSONResponse(
                        {"error": "authentication required"},
                        status_code=401,
                        headers={"WWW-Authenticate": 'Basic realm="mailmoat"'},
                    )
                return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
        try:
            response = await call_next(request)
        except CsrfError:
            response = PlainTextResponse("CSRF token missing or wrong", status_code=403)
        current: SessionData = request.state.session
        if current.fresh:
            response.set_cookie(
                COOKIE,
                sessions.dump(current),
                max_age=int(sessions.max_age),
                httponly=True,
                samesite="strict",
                secure=request.url.scheme == "https",
            )
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; "
            "script-src 'self'; frame-ancestors 'none'; form-action 'self'",
        )
        return response


async def login_page(request: Request) -> Response:
    board = dashboard_of(request)
    if board.sessions.open_access:
        return RedirectResponse("/", status_code=303)
    if request.method == "GET":
        return render(
            request, "login.html", {"error": "", "next": request.query_params.get("next", "/")}
        )
    data = await form_with_csrf(request)
    target = data.get("next", "/")
    if not target.startswith("/") or target.startswith("//"):
        target = "/"
    verdict = await board.password_ok(client_address(request), data.get("password", ""))
    if not isinstance(verdict, bool):
        context = {"error": "Too many failed logins: try again later.", "next": target}
        response = render(request, "login.html", context, 429)
        response.headers["Retry-After"] = str(max(1, round(verdict)))
        return response
    if not verdict:
        await asyncio.sleep(0.5)
        return render(request, "login.html", {"error": "Wrong password.", "next": target}, 401)
    request.state.session = board.sessions.logged_in()
    return RedirectResponse(target, status_code=303)


async def logout(request: Request) -> Response:
    await form_with_csrf(request)
    board = dashboard_of(request)
    session = session_of(request)
    if session.auth and not board.sessions.open_access:
        try:
            await board.sessions.revoke(board.store, session)
        except StoreError:
            log.exception("dashboard: logout could not revoke the session in the store")
            return PlainTextResponse("logout failed: the store is unavailable", status_code=503)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE)
    return response


def create_app(board: Dashboard) -> Starlette:
    from mailmoat.web import (
        api,
        history_learn,
        learn_api,
        pages,
        quarantine_page,
        reputation_pages,
    )

    routes = [
        Route("/login", login_page, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/", pages.overview),
        Route("/history", pages.history),
        Route("/message/{queue_id}", pages.message),
        *reputation_pages.routes(),  # its /message/{queue_id}/report first
        Route("/message/{queue_id}/{action}", history_learn.learn_from_history, methods=["POST"]),
        Route("/quarantine", quarantine_page.quarantine),
        Route("/quarantine/bulk", quarantine_page.bulk, methods=["POST"]),
        Route("/quarantine/{message_id}/preview", quarantine_page.quarantine_preview),
        Route("/quarantine/{message_id}/{action}", pages.quarantine_action, methods=["POST"]),
        Route("/config", pages.config_page),
        Route("/metrics", api.metrics),
        *api.routes(),
        *learn_api.routes(),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(Guard)])
    app.state.dashboard = board
    return app
