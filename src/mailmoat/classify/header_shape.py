"""Header features that carry across sites and years (feature set 2).

Contract: ``header_shape_keys(message)`` returns feature key strings drawn
from the parts of a header that the sender wrote and that mean the same at
any site: which standard fields are present, the shape of From (display
name against address), of the recipients, of Subject and of Message-ID,
and the MIME declaration. ``CONTENT_FIELDS`` names the fields whose values
are also tokenised. It never raises for any ``ParsedMessage``.

What is left out on purpose: every field the receiving side adds or that
belongs to one site or one mailing list (Received, Return-Path,
Delivered-To, List-*, X-* other than the mailer and priority, Date values,
the order of the fields). A model trained on one collection of mail learns those as
markers of that collection rather than of spam, and they mean nothing on
mail from another site.
"""

from __future__ import annotations

import re

from mailmoat.message import ParsedMessage
from mailmoat.message.model import parse_address

# Fields whose values are tokenised (field-prefixed words and domains).
CONTENT_FIELDS = frozenset(
    {"subject", "from", "reply-to", "content-type", "x-mailer", "user-agent"}
)
# Fields whose presence is noted; anything else is not named at all.
STANDARD_FIELDS = (
    "message-id",
    "date",
    "from",
    "to",
    "cc",
    "reply-to",
    "subject",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "in-reply-to",
    "references",
    "x-mailer",
    "user-agent",
    "sender",
    "organization",
    "x-priority",
    "x-msmail-priority",
)
_STANDARD = frozenset(STANDARD_FIELDS)
_LETTERS = re.compile(r"[A-Za-z]")
_UPPER = re.compile(r"[A-Z]")
_DIGIT_RUN = re.compile(r"\d{3,}")
_REPLY_PREFIX = re.compile(r"^\s*(re|fw|fwd|aw|sv|tr)\s*:", re.IGNORECASE)
_ENCODED_WORD = re.compile(r"=\?[^?]+\?[bqBQ]\?")


def header_shape_keys(message: ParsedMessage) -> list[str]:
    """The shape keys of ``message``'s header (see the module contract)."""
    present: dict[str, str] = {}
    for name, value in message.headers:
        key = name.lower()
        if key in _STANDARD and key not in present:
            present[key] = value
    keys = ["hf:" + name for name in present]
    keys += [
        "hm:" + name
        for name in ("message-id", "date", "from", "to", "subject")
        if name not in present
    ]
    keys += _from_keys(present.get("from", ""), present.get("reply-to"))
    keys += _recipient_keys(present.get("to", ""), present.get("cc", ""))
    keys += _subject_keys(present.get("subject", ""))
    keys += _message_id_keys(present.get("message-id", ""), message.from_addr)
    return keys


def _from_keys(value: str, reply_to: str | None) -> list[str]:
    name, address = _parse(value)
    local, _, domain = address.rpartition("@")
    keys = ["fs:name" if name else "fs:noname"]
    if not address:
        keys.append("fs:noaddr")
    if name:
        if "@" in name:
            keys.append("fs:name-has-at")
            if address and address not in name.lower():
                keys.append("fs:name-other-addr")
        if name.lower().replace(" ", "") == local:
            keys.append("fs:name-is-local")
        keys.append("fs:name-caps" if name.isupper() and _LETTERS.search(name) else "fs:name-mixed")
    if _DIGIT_RUN.search(local):
        keys.append("fs:local-digits")
    keys.append(f"fs:local-len:{min(len(local) // 4, 6)}")
    if domain:
        keys.append(f"fs:labels:{min(domain.count('.') + 1, 5)}")
    if reply_to is not None:
        other = _parse(reply_to)[1]
        keys.append("fs:reply-same" if other == address else "fs:reply-other")
        if other.rpartition("@")[2] != domain:
            keys.append("fs:reply-other-domain")
    return keys


def _recipient_keys(to: str, cc: str) -> list[str]:
    count = to.count("@") + cc.count("@")
    keys = [f"rc:{min(count, 4)}"]
    if "undisclosed" in to.lower():
        keys.append("rc:undisclosed")
    if to and "@" not in to:
        keys.append("rc:no-at")
    return keys


def _subject_keys(subject: str) -> list[str]:
    letters = len(_LETTERS.findall(subject))
    upper = len(_UPPER.findall(subject))
    keys = [f"ss:len:{min(len(subject) // 10, 8)}"]
    if letters >= 4:
        keys.append(f"ss:caps:{int(10 * upper / letters)}")
    if _REPLY_PREFIX.match(subject):
        keys.append("ss:reply")
    for mark in "!$%?":
        if mark in subject:
            keys.append("ss:has" + mark)
    if not subject.isascii():
        keys.append("ss:8bit")
    if _ENCODED_WORD.search(subject):
        keys.append("ss:encoded")
    if subject != subject.strip() or "  " in subject:
        keys.append("ss:spaces")
    return keys


def _message_id_keys(value: str, from_addr: str) -> list[str]:
    value = value.strip()
    if not value:
        return []
    local, at, host = value.strip("<>").rpartition("@")
    keys = []
    if not (value.startswith("<") and value.endswith(">")):
        keys.append("mi:unbracketed")
    if not at:
        keys.append("mi:no-at")
        return keys
    keys.append(f"mi:local-len:{min(len(local) // 8, 6)}")
    if "." not in host:
        keys.append("mi:host-no-dot")
    elif host.replace(".", "").isdigit():
        keys.append("mi:host-ip")
    sender_domain = from_addr.rpartition("@")[2]
    if sender_domain and (host == sender_domain or host.endswith("." + sender_domain)):
        keys.append("mi:host-is-sender")
    return keys


def _parse(value: str) -> tuple[str, str]:
    name, address = parse_address(value)
    return name.strip().strip("\"'"), address.strip().lower()
