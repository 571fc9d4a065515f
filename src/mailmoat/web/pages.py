"""HTML pages of the dashboard: overview graphs, history, message, quarantine, config.

Contract: each handler reads through ``mailmoat.stats`` and the quarantine,
renders one template, and changes nothing except the quarantine actions
(POST, CSRF-checked by ``form_with_csrf``). Query parameters are validated
(unknown view -> day); nothing from the request is trusted into a path.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from mailmoat.config import Config
from mailmoat.config.redact import redact_url
from mailmoat.feedback.bodies import kept_body
from mailmoat.stats import history as hist
from mailmoat.stats.counters import ACTION_LABELS, known_nodes, read_totals
from mailmoat.stats.series import TOP_KINDS, VIEWS, parse_since, read_events, read_series, read_top
from mailmoat.web import actions
from mailmoat.web.app import dashboard_of, form_with_csrf, fresh_dashboard_of, node_param, render
from mailmoat.web.charts import Layer, Mark, share_line, stacked_bars
from mailmoat.web.explain import REASONS, explain_symbol
from mailmoat.web.history_reader import bounded_window

ACTION_COLORS = {
    "accept": "#2f855a",
    "add_header": "#d69e2e",
    "quarantine": "#dd6b20",
    "discard": "#718096",
    "soft_reject": "#4a90c2",
    "reject": "#c53030",
}
PALETTE = [
    "#c53030", "#6b46c1", "#2b6cb0", "#dd6b20", "#2c7a7b", "#b83280",
    "#718096", "#975a16", "#276749", "#4c51bf", "#9b2c2c", "#285e61",
]  # fmt: skip
SINCE_CHOICES = ("1h", "6h", "24h", "3d", "7d")
PAGE_SIZE = 200
_SECRET_RE = re.compile(r"(password|secret|token|api_key|apikey|credential)", re.I)


async def overview(request: Request) -> Response:
    board = await fresh_dashboard_of(request)
    view = VIEWS.get(request.query_params.get("view", "day"), VIEWS["day"])
    node = node_param(request)
    now = board.clock()
    settings = board.config().stats
    series = await read_series(board.store, view, now, node)
    events = await read_events(board.store, settings, now, node)
    marks = [Mark(e.time, e.text, e.change > 0) for e in events]
    times = series.times
    mail_layers = [
        Layer(ACTION_LABELS[a], ACTION_COLORS[a], series.values(f"msg:{a}"))
        for a in ("accept", "add_header", "quarantine", "discard", "soft_reject", "reject")
    ]
    reason_layers = [
        Layer(r, PALETTE[i % len(PALETTE)], series.reason_values(r))
        for i, r in enumerate(series.reasons())
    ]
    step = view.step
    charts = {
        "mail": stacked_bars(times, step, mail_layers, view=view.name, label="Mail", marks=marks),
        "rejects": stacked_bars(
            times, step, reason_layers, view=view.name, label="Refusals by reason", marks=marks
        ),
        "spam": share_line(
            times, step, series.spam(), series.messages(), view=view.name, label="Spam share",
            marks=marks,
        ),
    }  # fmt: skip
    totals = await read_totals(
        board.store,
        series.start,
        now + 1,
        now=now,
        node=node,
        minute_hours=settings.minute_retention_hours,
    )
    tops = {kind: await read_top(board.store, kind, series.start, now, node) for kind in TOP_KINDS}
    context = {
        "view": view.name,
        "views": list(VIEWS),
        "nodes": await known_nodes(board.store),
        "selected_node": node or "",
        "charts": charts,
        "totals": totals,
        "labels": ACTION_LABELS,
        "colors": ACTION_COLORS,
        "events": events[:20],
        "tops": tops,
        "reasons_help": REASONS,
    }
    return render(request, "overview.html", context)


async def history(request: Request) -> Response:
    board = await fresh_dashboard_of(request)
    params = request.query_params
    filters = hist.Filters.from_query(params)
    since_text = params.get("since", "24h")
    try:
        since = parse_since(since_text)
    except ValueError:
        since_text, since = "24h", parse_since("24h")
    config = board.config()
    window = bounded_window(config, board.clock(), since)
    page = await board.history.page(
        config, board.store, filters, window, node=node_param(request), limit=PAGE_SIZE
    )
    entries = page.entries
    context = {
        "entries": entries,
        "more": page.more,
        "page_size": PAGE_SIZE,
        "filters": filters,
        "since": since_text,
        "since_choices": SINCE_CHOICES,
        "actions": ACTION_LABELS,
        "colors": ACTION_COLORS,
    }
    return render(request, "history.html", context)


async def message(request: Request) -> Response:
    board = await fresh_dashboard_of(request)
    queue_id = request.path_params["queue_id"]
    config = board.config()
    entries = await board.history.find(config, board.store, queue_id, board.clock())
    quarantined = [q for q in actions.open_quarantine(config).list() if q.queue_id == queue_id]
    symbols = []
    if entries:
        details = entries[0].get("symbol_details") or {}
        for name, score in sorted(entries[0].get("symbols", {}).items(), key=lambda kv: -kv[1]):
            symbols.append(
                {
                    "name": name,
                    "score": score,
                    "detail": details.get(name, ""),
                    "help": explain_symbol(name, config),
                }
            )
    context = {
        "queue_id": queue_id,
        "entries": entries,
        "entry": entries[0] if entries else None,
        "symbols": symbols,
        "quarantined": quarantined,
        "actions": ACTION_LABELS,
        "colors": ACTION_COLORS,
        "reasons_help": REASONS,
        "thresholds": config.actions,
        "body_kept": bool(quarantined) or kept_body(config, queue_id) is not None,
        "notice": request.query_params.get("notice", ""),
        "error": request.query_params.get("error", ""),
    }
    status = 200 if entries or quarantined else 404
    return render(request, "message.html", context, status)


async def run_action(request: Request, message_id: str, action: str) -> str:
    """Do one quarantine action; returns the notice, raises ``ActionError``."""
    from mailmoat.web.quarantine_page import run_single

    return await run_single(request, message_id, action)


async def quarantine_action(request: Request) -> Response:
    await form_with_csrf(request)
    message_id = request.path_params["message_id"]
    action = request.path_params["action"]
    try:
        notice = await run_action(request, message_id, action)
        query = {"notice": notice}
    except actions.ActionError as exc:
        query = {"error": str(exc)}
    from urllib.parse import urlencode

    return RedirectResponse(f"/quarantine?{urlencode(query)}", status_code=303)


def redacted_config(config: Config) -> list[tuple[str, list[tuple[str, str]]]]:
    """Sections of the running config as (key, shown value); secrets hidden."""
    sections: list[tuple[str, list[tuple[str, str]]]] = []
    top: list[tuple[str, str]] = []
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if dataclasses.is_dataclass(value):
            items = [(k, _shown(k, v)) for k, v in dataclasses.asdict(value).items()]  # type: ignore[arg-type]
            sections.append((field.name, items))
        elif isinstance(value, dict):
            items = []
            for key, sub in sorted(value.items()):
                if dataclasses.is_dataclass(sub):
                    for k, v in dataclasses.asdict(sub).items():  # type: ignore[arg-type]
                        items.append((f"{key}.{k}", _shown(k, v)))
                else:
                    items.append((key, _shown(key, sub)))
            sections.append((field.name, items))
        else:
            top.append((field.name, _shown(field.name, value)))
    return [("", top), *sections]


def _shown(key: str, value: Any) -> str:
    if _SECRET_RE.search(key) and value:
        return "•••••• (hidden)"
    if isinstance(value, str):
        value = redact_url(value)
    elif isinstance(value, tuple | list):
        value = [redact_url(v) if isinstance(v, str) else v for v in value]
    return repr(value)


async def config_page(request: Request) -> Response:
    config = dashboard_of(request).config()
    return render(request, "config.html", {"sections": redacted_config(config)})
