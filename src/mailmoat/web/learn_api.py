"""``POST /api/learn/{spam,ham,forget}``: feedback from a remote IMAP server.

Contract: the request body is one raw message (any content type). The
request must carry ``Authorization: Bearer <web.learn_token>``; the token
is compared in constant time, and a request without it, with a wrong one, or
to a dashboard with no token configured gets 401 and changes nothing (the
dashboard's session and CSRF rules do not apply here: ``app.Guard`` lets
POSTs under ``/api/learn/`` through to this check). Wrong tokens count as failed logins
of the client address (429 once throttled, as the login form). A body over
``smtp.max_message_size`` gets 413 (read no further than that); an empty
one 400. Any other bytes are learned as they are (``mailmoat.feedback``
never fails on a malformed message). Success is 200 with JSON ``{"ok":
true, "outcome": learned|moved|unchanged|forgotten|unknown, "version":
saved version or null}``; a store or file failure is 503 with
``{"error": ...}``, never a traceback.
"""

from __future__ import annotations

import hmac
import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mailmoat.feedback import LABELS, FeedbackError
from mailmoat.feedback.service import learn_with_config
from mailmoat.web.app import client_address, dashboard_of

log = logging.getLogger("mailmoat.web")


class TooLarge(Exception):
    pass


def token_ok(header: str, token: str) -> bool:
    """True when ``header`` is ``Bearer <token>`` (constant-time compare)."""
    scheme, _, given = header.partition(" ")
    if not token or scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, ``TooLarge`` past ``limit`` bytes (read no further)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _error(text: str, status: int, **headers: str) -> Response:
    return JSONResponse({"ok": False, "error": text}, status_code=status, headers=headers)


async def learn(request: Request) -> Response:
    board = dashboard_of(request)
    config = board.config()
    client = client_address(request)
    wait = board.throttle.retry_after(client)
    if wait > 0:
        return _error(
            "too many failed attempts: try again later",
            429,
            **{"Retry-After": str(max(1, round(wait)))},
        )
    if not token_ok(request.headers.get("authorization", ""), config.web.learn_token):
        board.throttle.failed(client)
        log.warning("learn API: request from %s without a valid token", client)
        return _error(
            "a valid bearer token (web.learn_token) is required",
            401,
            **{"WWW-Authenticate": 'Bearer realm="mailmoat"'},
        )
    label = request.path_params["label"]
    if label not in LABELS:
        return _error(f"unknown label {label!r}: use one of {', '.join(LABELS)}", 404)
    limit = config.smtp.max_message_size
    try:
        body = await read_body(request, limit)
    except TooLarge:
        return _error(f"message over smtp.max_message_size ({limit} bytes)", 413)
    try:
        result = await learn_with_config(
            config,
            board.store,
            [(body, label)],
            note=f"api from {client}",
            holder=board.model,
        )
    except FeedbackError as exc:
        return _error(str(exc), 400)
    except Exception as exc:
        log.exception("learn API: %s not applied", label)
        return _error(f"learning failed: {type(exc).__name__}: {exc}", 503)
    return JSONResponse({"ok": True, "outcome": result.outcomes[0], "version": result.version})


def routes() -> list[Route]:
    return [Route("/api/learn/{label}", learn, methods=["POST"])]
