"""The dashboard's source reputation pages: the "report" action of a
history entry, the campaigns and the worst sources.

Contract: ``POST /message/{queue_id}/report`` (CSRF-checked like every
form) sends the RFC 5965 abuse report of a quarantined or refused message
through ``mailmoat.reputation.sending`` and redirects back to the message
page with the outcome (``?reported=``); with reports off it says so and
sends nothing. ``GET /campaigns`` lists the campaigns of the last week
(``?sort=volume|last|first|source_count|spam_share``) and the sources with
the most spam, each linking to the history; ``GET /campaigns/{id}`` shows
one campaign with its recent transactions. ``/api/campaigns`` is the list
as JSON. ``routes()`` lists the routes for ``create_app``.
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from mailmoat.reputation.campaigns import SORTS, read_campaign, read_campaigns
from mailmoat.reputation.counts import indexed_sources, read_counts
from mailmoat.reputation.sending import ReportsOff, report_queue_ids
from mailmoat.reputation.sources import Source, TableError
from mailmoat.web.app import dashboard_of, form_with_csrf, fresh_dashboard_of, render

TOP_SOURCES = 20
READ_AT_MOST = 500


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


async def worst_sources(request: Request) -> list[dict[str, object]]:
    board = dashboard_of(request)
    settings = board.config().reputation
    now = board.clock()
    seen = await indexed_sources(board.store, now, settings.retention)
    keys = sorted(seen, key=lambda k: -seen[k])[:READ_AT_MOST]  # the busiest only
    counts = await read_counts(board.store, keys, now, settings.half_life, settings.retention)
    rows = [
        {"kind": (s := Source.parse(k)).kind, "name": s.name, **c.as_dict()}
        for k, c in zip(keys, counts, strict=True)
        if c.bad >= 1
    ]
    rows.sort(key=lambda row: -float(row["quarantined"]) - float(row["refused"]))  # type: ignore[arg-type]
    return rows[:TOP_SOURCES]


async def campaigns(request: Request) -> Response:
    board = await fresh_dashboard_of(request)
    sort = request.query_params.get("sort", "volume")
    sort = sort if sort in SORTS else "volume"
    found = await read_campaigns(board.store, board.clock(), sort=sort)
    context = {
        "campaigns": found,
        "sort": sort,
        "sorts": SORTS,
        "sources": await worst_sources(request),
    }
    return render(request, "campaigns.html", context)


async def campaign(request: Request) -> Response:
    board = await fresh_dashboard_of(request)
    found = await read_campaign(board.store, request.path_params["campaign_id"][:64])
    return render(request, "campaign.html", {"campaign": found}, 200 if found else 404)


async def api_campaigns(request: Request) -> Response:
    board = await fresh_dashboard_of(request)
    sort = request.query_params.get("sort", "volume")
    found = await read_campaigns(board.store, board.clock(), sort=sort)
    return JSONResponse({"campaigns": found, "sources": await worst_sources(request)})


def routes() -> list[Route]:
    return [
        Route("/message/{queue_id}/report", report_message, methods=["POST"]),
        Route("/campaigns", campaigns),
        Route("/campaigns/{campaign_id}", campaign),
        Route("/api/campaigns", api_campaigns),
    ]
