"""The web dashboard: graphs, history, quarantine, config, JSON API, metrics.

Public API: ``create_app`` / ``Dashboard`` (the ASGI app), ``start_dashboard``
(serve it in the running loop), ``hash_password`` / ``check_bind``.
Importing this package pulls in Starlette and uvicorn; the CLI imports it only
for ``serve`` and ``web``.
"""

from __future__ import annotations

from mailmoat.web.app import Dashboard, create_app
from mailmoat.web.auth import check_bind, hash_password, verify_password
from mailmoat.web.server import WebServer, make_dashboard, start_dashboard

__all__ = [
    "Dashboard",
    "WebServer",
    "check_bind",
    "create_app",
    "hash_password",
    "make_dashboard",
    "start_dashboard",
    "verify_password",
]
