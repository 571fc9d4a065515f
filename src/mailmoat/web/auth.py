"""Dashboard security: password hashes, signed sessions, CSRF tokens, binding.

Contract:
- ``hash_password`` makes ``scrypt$N$r$p$salt$hash`` (base64, stdlib
  ``hashlib.scrypt``); ``verify_password`` checks one in constant time and
  returns False (never raises) for a malformed hash.
- A session is an itsdangerous-signed cookie ``{"sid", "auth"}`` with a
  maximum age; the CSRF token of a session is an HMAC of its ``sid``, so it
  needs no server state and changes when the session id does (login).
  Logging out revokes the session id in the store (``revoke``, kept as long
  as the cookie could live), so a copy of the cookie is refused afterwards
  (``is_revoked``); a store that cannot answer counts as revoked.
- ``check_bind`` raises ``ConfigError`` when the dashboard would listen on a
  non-loopback address without a password.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer

from mailmoat.config import ConfigError, WebConfig, parse_hostport
from mailmoat.store.base import Store, StoreError

COOKIE = "mailmoat_session"
_REVOKED = "web:revoked:"
_N, _R, _P = 2**14, 8, 1


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${_N}${_R}${_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode("utf-8"),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
            maxmem=256 * 1024 * 1024,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(web: WebConfig) -> tuple[str, int]:
    """The address to listen on; ConfigError when it would be unsafe."""
    host, port = parse_hostport(web.listen, where="web.listen", default_port=8025)
    if web.password_hash and not web.password_hash.startswith("scrypt$"):
        raise ConfigError(
            "web.password_hash is not a hash: make one with `mailmoat web --hash-password`"
        )
    if not web.password_hash and not is_loopback(host):
        raise ConfigError(
            f"web.listen = {web.listen!r} is not a loopback address and web.password_hash is "
            "empty: the dashboard refuses to start without a password off loopback. "
            "Set web.password_hash (make one with `mailmoat web --hash-password`) "
            "or listen on 127.0.0.1."
        )
    return host, port


@dataclass
class SessionData:
    sid: str
    auth: bool
    fresh: bool = False


class Sessions:
    def __init__(self, secret: str, max_age: float, password_hash: str) -> None:
        self._key = (secret or secrets.token_hex(32)).encode()
        self._serializer = URLSafeTimedSerializer(self._key, salt="mailmoat-session")
        self.max_age = max_age
        self.password_hash = password_hash

    @property
    def open_access(self) -> bool:
        """No password configured: loopback-only, no login."""
        return not self.password_hash

    def load(self, cookie: str | None) -> SessionData:
        if cookie:
            try:
                data: Any = self._serializer.loads(cookie, max_age=int(self.max_age))
                if isinstance(data, dict) and isinstance(data.get("sid"), str):
                    return SessionData(data["sid"], bool(data.get("auth")))
            except BadSignature:
                pass
        return SessionData(secrets.token_urlsafe(18), False, fresh=True)

    def dump(self, session: SessionData) -> str:
        return self._serializer.dumps({"sid": session.sid, "auth": session.auth})

    def authenticated(self, session: SessionData) -> bool:
        return self.open_access or session.auth

    def logged_in(self) -> SessionData:
        """A new authenticated session (the password was checked by the caller,
        off the event loop: ``throttle.PasswordChecker``)."""
        return SessionData(secrets.token_urlsafe(18), True, fresh=True)

    def csrf_token(self, session: SessionData) -> str:
        return hmac.new(self._key, b"csrf:" + session.sid.encode(), hashlib.sha256).hexdigest()[:40]

    def csrf_ok(self, session: SessionData, token: str) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf_token(session), token)

    async def revoke(self, store: Store, session: SessionData) -> None:
        """Refuse this session id from now on (logout)."""
        await store.set(_REVOKED + session.sid, b"1", self.max_age + 60)

    async def is_revoked(self, store: Store, session: SessionData) -> bool:
        try:
            return await store.get(_REVOKED + session.sid) is not None
        except StoreError:
            return True
