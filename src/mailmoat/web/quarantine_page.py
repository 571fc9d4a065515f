"""The dashboard's quarantine page: search, pages, preview, bulk actions.

Contract:

- ``GET /quarantine``: the held messages matching the search
  (``quarantine_view.QuarantineQuery``), newest first, ``PAGE_SIZE`` a page,
  each with a checkbox for the bulk actions and its own buttons.
- ``GET /quarantine/{id}/preview``: header fields and the first lines of the
  text, escaped by the template (never rendered HTML), with the buttons.
- ``POST /quarantine/bulk`` (CSRF-checked like every POST): ``action``
  (``release``, ``delete``, ``learn-spam``, ``learn-ham``) on every ``id``
  (at most ``MAX_BULK``); redirects back to the same search and page with a
  notice naming the messages by queue id, and the failures with their reason.
  Learning saves the model once for the whole selection
  (``mailmoat.feedback``). One message failing does not stop the others.

Every action is logged (``quarantine: <action> queue_id=... id=...``) and
counted (``quarantine:<action>`` in the statistics, on ``/metrics`` as
``mailmoat_quarantine_actions_total{action}``; releases also as
``released``, the older counter).
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl, urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from mailmoat.classify.holder import ModelHolder
from mailmoat.delivery.quarantine import QuarantinedMessage
from mailmoat.feedback.service import learn_with_config
from mailmoat.web import actions
from mailmoat.web.app import dashboard_of, form_with_csrf, render
from mailmoat.web.quarantine_view import FILTERS, QuarantineQuery, paginate, preview, select

log = logging.getLogger("mailmoat.web")

MAX_BULK = 500
BULK_ACTIONS = ("release", "delete", "learn-spam", "learn-ham")
ACTION_WORDS = {
    "release": "Released",
    "delete": "Deleted",
    "learn-spam": "Learned as spam",
    "learn-ham": "Learned as ham",
}


def count(request: Request, action: str, amount: int = 1) -> None:
    recorder = dashboard_of(request).recorder
    if recorder is not None and amount:
        recorder.count(f"quarantine:{action}", amount)
        if action == "release":
            recorder.count("released", amount)


def logged(action: str, item: QuarantinedMessage, detail: str = "") -> None:
    log.info(
        "quarantine: %s queue_id=%s id=%s%s",
        action,
        item.queue_id,
        item.id,
        f": {detail}" * bool(detail),
    )


async def quarantine(request: Request) -> Response:
    board = dashboard_of(request)
    query = QuarantineQuery.from_params(request.query_params)
    held = actions.open_quarantine(board.config()).list()
    page = paginate(select(held, query), query.page)
    here = {**query.filters(), "page": str(page.number)}
    context = {
        "page": page,
        "items": page.items,
        "held": len(held),
        "query": query,
        "filters": query.filters(),
        "back": urlencode(here),
        "notice": request.query_params.get("notice", ""),
        "error": request.query_params.get("error", ""),
        "link": lambda number: "/quarantine?" + urlencode({**query.filters(), "page": number}),
    }
    return render(request, "quarantine.html", context)


async def quarantine_preview(request: Request) -> Response:
    board = dashboard_of(request)
    found = actions.open_quarantine(board.config()).get(request.path_params["message_id"])
    if found is None:
        return render(request, "quarantine_preview.html", {"q": None}, 404)
    item, raw = found
    return render(request, "quarantine_preview.html", {"q": item, "preview": preview(raw)})


async def bulk(request: Request) -> Response:
    data = await form_with_csrf(request)
    ids = [str(v) for v in (await request.form()).getlist("id")][:MAX_BULK]
    action = data.get("action", "")
    back = data.get("back", "")
    if action not in BULK_ACTIONS:
        outcome = {"error": f"unknown action {action!r}"}
    elif not ids:
        outcome = {"error": "Select messages first."}
    else:
        outcome = await run_bulk(request, action, ids)
    # Back to the same search and page: only those parameters, re-encoded.
    kept = [(k, v) for k, v in parse_qsl(back) if k in (*FILTERS, "page")]
    target = "/quarantine?" + urlencode([*kept, *outcome.items()])
    return RedirectResponse(target, status_code=303)


async def run_bulk(request: Request, action: str, ids: list[str]) -> dict[str, str]:
    """Do ``action`` on each of ``ids``; the notice and error for the page."""
    board = dashboard_of(request)
    config = board.config()
    box = actions.open_quarantine(config)
    done: list[str] = []
    failed: list[str] = []
    found: list[tuple[QuarantinedMessage, bytes]] = []
    for message_id in dict.fromkeys(ids):
        held = box.get(message_id)
        if held is None:
            failed.append(f"{message_id} (no longer held)")
        else:
            found.append(held)
    if action in ("learn-spam", "learn-ham"):
        label = "spam" if action == "learn-spam" else "ham"
        try:
            result = await learn_with_config(
                config,
                board.store,
                [(raw, label) for _item, raw in found],
                note="dashboard",
                holder=process_model(request),
            )
        except Exception as exc:
            log.exception("quarantine: %s of %d messages failed", action, len(found))
            failed.extend(f"{item.queue_id} ({type(exc).__name__}: {exc})" for item, _ in found)
        else:
            for (item, _raw), what in zip(found, result.outcomes, strict=True):
                logged(action, item, what)
                done.append(item.queue_id)
    else:
        for item, _raw in found:
            try:
                if action == "release":
                    where = await actions.release(config, box, item.id)
                    logged(action, item, where)
                else:
                    actions.delete(box, item.id)
                    logged(action, item)
            except actions.ActionError as exc:
                failed.append(f"{item.queue_id} ({exc})")
                continue
            done.append(item.queue_id)
    count(request, action, len(done))
    outcome: dict[str, str] = {}
    if done:
        outcome["notice"] = f"{ACTION_WORDS[action]} {len(done)}: {', '.join(done)}."
    if failed:
        outcome["error"] = f"Not {ACTION_WORDS[action].lower()} {len(failed)}: {', '.join(failed)}."
    return outcome


def process_model(request: Request) -> ModelHolder | None:
    """The serving process's model holder (None for a dashboard alone)."""
    return dashboard_of(request).model


async def run_single(request: Request, message_id: str, action: str) -> str:
    """One message's button: the notice (by queue id); ``ActionError`` otherwise."""
    if action not in BULK_ACTIONS:
        raise actions.ActionError(f"unknown action {action!r}")
    board = dashboard_of(request)
    config = board.config()
    box = actions.open_quarantine(config)
    held = box.get(message_id)
    if held is None:
        raise actions.ActionError(f"no quarantined message {message_id}")
    item, raw = held
    if action == "release":
        where = await actions.release(config, box, message_id)
        notice = f"Released {item.queue_id}: {where}."
        logged(action, item, where)
    elif action == "delete":
        actions.delete(box, message_id)
        notice = f"Deleted {item.queue_id}."
        logged(action, item)
    else:
        label = "spam" if action == "learn-spam" else "ham"
        try:
            result = await learn_with_config(
                config,
                board.store,
                [(raw, label)],
                note="dashboard",
                holder=process_model(request),
            )
        except Exception as exc:
            log.exception("quarantine: %s failed", action)
            raise actions.ActionError(f"learning failed: {type(exc).__name__}: {exc}") from exc
        notice = f"{item.queue_id}: learned as {label} ({result.summary()})."
        logged(action, item, result.outcomes[0])
    count(request, action)
    return notice
