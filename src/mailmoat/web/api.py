"""JSON API under ``/api/`` and Prometheus metrics at ``/metrics``.

Contract (all GET unless said; JSON; times are epoch seconds):
- ``/api/summary?since=24h&node=``: totals, refusals by reason, spam share,
  top lists, step events (the numbers ``mailmoat stats`` prints)
- ``/api/series?view=day|week|month|year&node=``: the graph data
- ``/api/history?since=24h&limit=200&before=&<filters>``: history entries,
  newest first (filters as in ``stats.history.Filters``); ``since`` is cut to
  ``stats.history_days``, ``limit`` to ``history_reader.MAX_PAGE``; with
  ``more`` true, ``next_before`` is the ``before`` of the next page
- ``/api/message/{queue_id}``: the records of one transaction
- ``/api/events``: step changes; ``/api/quarantine``: quarantined messages
- POST ``/api/quarantine/{id}/{release|delete|learn-spam|learn-ham}`` with
  header ``X-CSRF-Token`` (the dashboard session's token)
``/metrics`` exposes this node's all-time counters in the Prometheus text
format: ``mailmoat_messages_total{action}``, ``mailmoat_rejects_total{reason}``,
``mailmoat_tempfails_total{reason}``, ``mailmoat_connections_total``,
``mailmoat_quarantine_released_total``, ``mailmoat_history_dropped_total``,
``mailmoat_autolearn_total{label}``, ``mailmoat_quarantine_actions_total{action}``
and the gauge ``mailmoat_quarantine_messages``; then the latency histograms and
error counters of ``mailmoat.metrics`` (docs/metrics.md, among them
``mailmoat_learn_total{label}``: feedback learned, by spam, ham, forget) and
``mailmoat_build_info{version,python}``.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from mailmoat import installed_version
from mailmoat.delivery.quarantine import as_dict
from mailmoat.metrics import build_info, render
from mailmoat.stats import history as hist
from mailmoat.stats.counters import ACTIONS, DAY, read_all_time, total_key
from mailmoat.stats.series import VIEWS, parse_since, read_events, read_series, summary
from mailmoat.store.base import StoreError
from mailmoat.web import actions
from mailmoat.web.app import dashboard_of, form_with_csrf, fresh_dashboard_of, node_param
from mailmoat.web.history_reader import bounded_window
from mailmoat.web.pages import run_action


def _since(request: Request, default: str = "24h") -> float | JSONResponse:
    try:
        return parse_since(request.query_params.get("since", default))
    except ValueError as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)


async def api_summary(request: Request) -> Response:
    board = await fresh_dashboard_of(request)
    since = _since(request)
    if isinstance(since, JSONResponse):
        return since
    node = node_param(request)
    settings = board.config().stats
    since = min(since, settings.day_retention_days * DAY)  # nothing older is kept
    data = await summary(board.store, settings, since, board.clock(), node)
    return JSONResponse(data)


async def api_series(request: Request) -> Response:
    board = await fresh_dashboard_of(request)
    name = request.query_params.get("view", "day")
    if name not in VIEWS:
        return JSONResponse({"error": f"view must be one of {list(VIEWS)}"}, status_code=400)
    node = node_param(request)
    series = await read_series(board.store, VIEWS[name], board.clock(), node)
    return JSONResponse(series.as_dict())


async def api_history(request: Request) -> Response:
    board = await fresh_dashboard_of(request)
    since = _since(request)
    if isinstance(since, JSONResponse):
        return since
    params = request.query_params
    try:
        limit = int(params.get("limit", "200"))
        before = float(params["before"]) if params.get("before") else None
    except ValueError:
        return JSONResponse({"error": "limit and before must be numbers"}, status_code=400)
    config = board.config()
    window = bounded_window(config, board.clock(), since, before)
    try:
        page = await board.history.page(
            config,
            board.store,
            hist.Filters.from_query(params),
            window,
            node=node_param(request),
            limit=limit,
        )
    except StoreError as exc:
        return JSONResponse({"error": f"history unavailable: {exc}"}, status_code=503)
    result: dict[str, object] = {
        "count": len(page.entries),
        "entries": page.entries,
        "since": window.since,
        "more": page.more,
    }
    if page.more:
        result["next_before"] = page.next_end
    return JSONResponse(result)


async def api_message(request: Request) -> Response:
    board = await fresh_dashboard_of(request)
    queue_id = request.path_params["queue_id"]
    try:
        entries = await board.history.find(board.config(), board.store, queue_id, board.clock())
    except StoreError as exc:
        return JSONResponse({"error": f"history unavailable: {exc}"}, status_code=503)
    if not entries:
        return JSONResponse({"error": f"no record of {queue_id}"}, status_code=404)
    return JSONResponse({"queue_id": queue_id, "entries": entries})


async def api_events(request: Request) -> Response:
    board = await fresh_dashboard_of(request)
    node = node_param(request)
    events = await read_events(board.store, board.config().stats, board.clock(), node)
    return JSONResponse({"events": [e.as_dict() for e in events]})


async def api_quarantine(request: Request) -> Response:
    items = actions.open_quarantine(dashboard_of(request).config()).list()
    return JSONResponse({"count": len(items), "messages": [as_dict(i) for i in items]})


async def api_quarantine_action(request: Request) -> Response:
    await form_with_csrf(request)
    try:
        notice = await run_action(
            request, request.path_params["message_id"], request.path_params["action"]
        )
    except actions.ActionError as exc:
        return JSONResponse({"ok": False, "error": str(exc)}, status_code=409)
    return JSONResponse({"ok": True, "result": notice})


LEARNED = ("spam", "ham")


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


async def metrics(request: Request) -> Response:
    board = await fresh_dashboard_of(request)
    counts = await read_all_time(board.store, board.node)
    node = _label(board.node)
    lines: list[str] = []

    def family(name: str, kind: str, help_text: str, samples: list[tuple[str, float]]) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            inner = f'node="{node}"' + (f",{labels}" if labels else "")
            lines.append(f"{name}{{{inner}}} {value:g}")

    def by_prefix(prefix: str) -> list[tuple[str, float]]:
        return [
            (f'reason="{_label(k[len(prefix) :])}"', float(v))
            for k, v in sorted(counts.items())
            if k.startswith(prefix)
        ]

    family(
        "mailmoat_messages_total",
        "counter",
        "Transactions by outcome (accept, add_header, quarantine, soft_reject, reject, discard).",
        [(f'action="{a}"', float(counts.get(f"msg:{a}", 0))) for a in ACTIONS],
    )
    family("mailmoat_rejects_total", "counter", "Permanent refusals by reason.", by_prefix("rej:"))
    family(
        "mailmoat_tempfails_total", "counter", "Temporary refusals by reason.", by_prefix("tmp:")
    )
    family(
        "mailmoat_connections_total",
        "counter",
        "SMTP connections accepted.",
        [("", float(counts.get("connections", 0)))],
    )
    family(
        "mailmoat_quarantine_released_total",
        "counter",
        "Quarantined messages released from the dashboard.",
        [("", float(counts.get("released", 0)))],
    )
    family(
        "mailmoat_history_dropped_total",
        "counter",
        "History records dropped over stats.history_max_per_hour.",
        [("", float(counts.get("history_dropped", 0)))],
    )
    family(
        "mailmoat_autolearn_total",
        "counter",
        "Messages the classifier learned from the gateway's own verdicts, by label.",
        [(f'label="{label}"', float(counts.get(f"autolearn:{label}", 0))) for label in LEARNED],
    )
    family(
        "mailmoat_quarantine_actions_total",
        "counter",
        "Dashboard actions on quarantined messages, by action.",
        [
            (f'action="{action}"', float(counts.get(f"quarantine:{action}", 0)))
            for action in ("release", "delete", "learn-spam", "learn-ham")
        ],
    )
    waiting = len(actions.open_quarantine(board.config()).list())
    family(
        "mailmoat_quarantine_messages", "gauge", "Messages in quarantine.", [("", float(waiting))]
    )
    stored = await board.store.hgetall(total_key(board.node))
    lines += render({k: v for k, v in stored.items() if isinstance(v, float)}, board.node)
    lines += build_info(installed_version())
    return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")


def routes() -> list[Route]:
    return [
        Route("/api/summary", api_summary),
        Route("/api/series", api_series),
        Route("/api/history", api_history),
        Route("/api/message/{queue_id}", api_message),
        Route("/api/events", api_events),
        Route("/api/quarantine", api_quarantine),
        Route("/api/quarantine/{message_id}/{action}", api_quarantine_action, methods=["POST"]),
    ]
