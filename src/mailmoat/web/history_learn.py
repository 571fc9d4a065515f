"""Learning any message of the history from its dashboard page.

Contract: ``POST /message/{queue_id}/{learn-spam|learn-ham|forget}``
(CSRF-checked like every POST) learns, moves or forgets the message through
``mailmoat.feedback`` when its body is kept: a copy of accepted mail
(``[quarantine] keep_accepted_days``, ``feedback.bodies``) or the message in
the quarantine. It redirects to the message page with a notice naming the
queue id and what happened, or an error when no body is kept. Logged
(``history: learn-spam queue_id=...``) and counted by label (``mailmoat_learn_total``).
``body_of(config, queue_id)`` is what the message page asks to show the
buttons.
"""

from __future__ import annotations

import logging
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from mailmoat.config import Config
from mailmoat.feedback.bodies import kept_body
from mailmoat.feedback.service import learn_with_config
from mailmoat.web import actions
from mailmoat.web.app import dashboard_of, form_with_csrf
from mailmoat.web.quarantine_page import process_model

log = logging.getLogger("mailmoat.web")

LABELS = {"learn-spam": "spam", "learn-ham": "ham", "forget": "forget"}


def body_of(config: Config, queue_id: str) -> bytes | None:
    """The message's bytes if kept (accepted copy, else the quarantine)."""
    kept = kept_body(config, queue_id)
    if kept is not None:
        return kept
    box = actions.open_quarantine(config)
    for item in box.list():
        if item.queue_id == queue_id:
            found = box.get(item.id)
            if found is not None:
                return found[1]
    return None


async def learn_from_history(request: Request) -> Response:
    await form_with_csrf(request)
    board = dashboard_of(request)
    config = board.config()
    queue_id = request.path_params["queue_id"]
    action = request.path_params["action"]
    body = body_of(config, queue_id) if action in LABELS else None
    if action not in LABELS:
        outcome = {"error": f"unknown action {action!r}"}
    elif body is None:
        outcome = {"error": f"The body of {queue_id} is not kept: nothing to learn."}
    else:
        try:
            result = await learn_with_config(
                config,
                board.store,
                [(body, LABELS[action])],
                note="dashboard",
                holder=process_model(request),
            )
        except Exception as exc:
            log.exception("history: %s of %s failed", action, queue_id)
            outcome = {"error": f"learning failed: {type(exc).__name__}: {exc}"}
        else:
            log.info("history: %s queue_id=%s: %s", action, queue_id, result.outcomes[0])
            outcome = {"notice": f"{queue_id}: {result.outcomes[0]} ({result.summary()})."}
    target = f"/message/{quote(queue_id, safe='')}?{urlencode(outcome)}"
    return RedirectResponse(target, status_code=303)
