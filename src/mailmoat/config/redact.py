"""Hiding secrets when a configuration is shown (``mailmoat config``, the
dashboard's config page).

Contract: ``SECRET_KEYS`` names the keys whose whole value is secret;
``redact_url(text)`` returns ``text`` with the password of a URL
(``scheme://user:password@host``, user info without a password, or a
``password=``/``token=`` query parameter) replaced by ``<hidden>``, and any
other text unchanged. It never raises.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

SECRET_KEYS = frozenset({"password_hash", "secret_key"})
HIDDEN = "<hidden>"
_SECRET_PARAM = re.compile(r"((?:^|&)(?:password|pass|secret|token)=)[^&]*", re.I)


def redact_url(text: str) -> str:
    """``text`` with the password of a URL (``scheme://user:pw@host``, or a
    ``password=`` query parameter) replaced by ``<hidden>``."""
    if "://" not in text:
        return text
    try:
        parts = urlsplit(text)
    except ValueError:
        return HIDDEN
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, colon, _password = userinfo.partition(":")
        netloc = f"{user}:{HIDDEN}@{hostport}" if colon else f"{HIDDEN}@{hostport}"
    query = _SECRET_PARAM.sub(lambda m: m.group(1) + HIDDEN, parts.query)
    if netloc == parts.netloc and query == parts.query:
        return text
    tail = (f"?{query}" if query else "") + (f"#{parts.fragment}" if parts.fragment else "")
    return f"{parts.scheme}://{netloc}{parts.path}{tail}"
