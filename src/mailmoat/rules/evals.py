"""A few of SpamAssassin's ``eval:`` tests, done natively (cheap, well defined).

Contract: ``NATIVE`` maps an eval call, normalised by ``normalise`` (no
spaces, single quotes), to a function of (message, transaction) giving
whether the test hits. The plugins whose everyday tests are here count as
loaded for ``ifplugin`` (``cf.RUNNABLE_PLUGINS``); their other evals are
skipped and counted like every eval. Implemented:

- RelayEval: ``check_all_trusted()`` (the client is on loopback and no
  Received header names an outside relay), ``check_no_relays()``;
- MIMEEval: ``check_for_mime('mime_qp_count')`` and ``('mime_base64_count')``
  (a part, or the message, says that Content-Transfer-Encoding),
  ``('mime_attachment')``, ``check_for_mime_html()``,
  ``check_for_mime_html_only()``;
- HTMLEval: ``html_test('html')``, ``html_tag_exists('TAG')``;
- VBounce: ``have_any_bounce_relays()`` and the welcomelist test are false,
  as in SpamAssassin when no ``welcomelist_bounce_relays`` is configured
  (there is no such setting here): its regex rules then run as there.

Nothing here raises on odd content.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from mailmoat.rules import satexts

Native = Callable[[Any, Any], bool]
_RAW_LIMIT = 256 * 1024


def normalise(call: str) -> str:
    return re.sub(r"\s+", "", call).replace('"', "'")


_TRANSFER_ENCODING = b"content-transfer-encoding:"
_last_encodings: tuple[bytes, frozenset[bytes]] = (b"", frozenset())


def transfer_encodings(raw: bytes) -> frozenset[bytes]:
    """The encodings (lower case, as far as ``ENCODINGS`` go) named at the
    start of a line ``Content-Transfer-Encoding:`` (any case, blanks
    after the colon) in the first 256 KiB of ``raw``: what the regex
    ``^content-transfer-encoding:[ \t]*NAME`` (ignoring case, multi-line)
    finds, for every name at once (both evals read the same message)."""
    global _last_encodings
    if _last_encodings[0] is raw:
        return _last_encodings[1]
    low = raw[:_RAW_LIMIT].lower()
    found: set[bytes] = set()
    at = low.find(_TRANSFER_ENCODING)
    while at >= 0:
        if at == 0 or low[at - 1] == 0x0A:
            value = at + len(_TRANSFER_ENCODING)
            while value < len(low) and low[value] in (0x20, 0x09):
                value += 1
            found.update(name for name in ENCODINGS if low.startswith(name, value))
        at = low.find(_TRANSFER_ENCODING, at + 1)
    encodings = frozenset(found)
    _last_encodings = (raw, encodings)
    return encodings


ENCODINGS = (b"quoted-printable", b"base64")


def _encoding(name: str) -> Native:
    encoded = name.encode()
    return lambda message, tx: encoded in transfer_encodings(message.raw)


def _loopback(tx: Any) -> bool:
    ip = getattr(getattr(tx, "session", None), "client_ip", "") or ""
    return ip.startswith("127.") or ip == "::1"


def _received_relays(message: Any) -> bool:
    """Whether any Received header names a relay (trusted or not)."""
    return any(
        name.lower() == "received" and satexts.parse_received(satexts.as_bytes(value))
        for name, value in message.headers
    )


def _untrusted_relays(message: Any) -> bool:
    return bool(satexts.relays(message, None, ""))


def _tag_exists(tag: str) -> Native:
    pattern = re.compile(rf"<{re.escape(tag)}[\s>/]", re.I)
    return lambda message, tx: pattern.search(message.html) is not None


NATIVE: dict[str, Native] = {
    "check_all_trusted()": lambda m, tx: _loopback(tx) and not _untrusted_relays(m),
    "check_no_relays()": lambda m, tx: (tx is None or _loopback(tx)) and not _received_relays(m),
    "check_for_mime('mime_qp_count')": _encoding("quoted-printable"),
    "check_for_mime('mime_base64_count')": _encoding("base64"),
    "check_for_mime('mime_attachment')": lambda m, tx: bool(m.attachments),
    "check_for_mime_html()": lambda m, tx: "text/html" in m.part_types or bool(m.html),
    "check_for_mime_html_only()": lambda m, tx: (
        ("text/html" in m.part_types or bool(m.html)) and "text/plain" not in m.part_types
    ),
    "html_test('html')": lambda m, tx: bool(m.html),
    **{f"html_tag_exists('{tag}')": _tag_exists(tag) for tag in ("html", "style", "center")},
    "have_any_bounce_relays()": lambda m, tx: False,
    "check_welcomelist_bounce_relays()": lambda m, tx: False,
    "check_whitelist_bounce_relays()": lambda m, tx: False,
}
