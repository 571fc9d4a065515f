"""The dashboard's source reputation pages: the "report" action of a
history entry, and the campaigns page.

Contract: ``POST /message/{queue_id}/report`` (CSRF-checked like every
form) sends the RFC 5965 abuse report of a quarantined or refused message
through ``mailmoat.reputation.sending`` and redirects back to the message
page with the outcome (``?reported=``); with reports off it says so and
sends nothing. ``routes()`` lists the routes for ``create_app``.
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from mailmoat.reputation.sending import ReportsOff, report_queue_ids
from mailmoat.reputation.sources import TableError
from mailmoat.web.app import dashboard_of, form_with_csrf


async def report_message(request: Request) -> Response:
    await form_with_csrf(request)
    board = dashboard_of(request)
    queue_id = request.path_params["queue_id"]
    try:
        lines = await report_queue_ids(board.config(), board.store, [queue_id])
        outcome = "; ".join(lines) or "nothing to report"
    except (ReportsOff, TableError) as exc:
        outcome = f"not reported: {exc}"
    target = f"/message/{quote(queue_id, safe='')}?reported={quote(outcome[:300], safe='')}"
    return RedirectResponse(target, status_code=303)


def routes() -> list[Route]:
    return [Route("/message/{queue_id}/report", report_message, methods=["POST"])]
