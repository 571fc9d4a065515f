"""Relay control and envelope address syntax: never an open relay.

Contract: ``parse_path("<user@example.org>")`` returns the address inside
the angle brackets or raises ``AddressError``; ``relay_allowed(addr,
domains)`` says whether a recipient may pass. Policy, strictest first:

- Source routes (``<@relay:user@dom>``), UUCP bang paths (``host!user``),
  the percent hack (``user%other@dom``) and quoted local parts holding ``@``
  (``"user@other"@dom``) are refused outright even when the final domain is
  ours: the MTA behind us might honour them and relay onwards.
- The domain is compared case-insensitively after removing one trailing
  dot; more dots, empty labels and address literals (``[1.2.3.4]``) are not
  ours. A ``relay.domains`` entry starting with ``.`` also covers subdomains.
- The bare ``postmaster`` recipient (RFC 5321 4.5.1) is always accepted.
"""

from __future__ import annotations

import re


class AddressError(ValueError):
    """An envelope path that is not valid SMTP syntax."""


_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-\x80-\U0010ffff]+"
_DOT_STRING = re.compile(rf"^{_ATOM}(?:\.{_ATOM})*$")
_QUOTED = re.compile(r'^"(?:[^"\\\r\n]|\\[\x20-\x7e])*"$')
_LABEL = re.compile(
    r"^[A-Za-z0-9\x80-\U0010ffff](?:[A-Za-z0-9\-\x80-\U0010ffff]*[A-Za-z0-9\x80-\U0010ffff])?$"
)


def parse_path(text: str, *, allow_null: bool = False) -> str:
    """The address inside ``<...>``; ``""`` for the null path when allowed."""
    text = text.strip()
    if not (text.startswith("<") and text.endswith(">")):
        raise AddressError("address must be enclosed in <>")
    inner = text[1:-1]
    if inner == "":
        if allow_null:
            return ""
        raise AddressError("empty address")
    if any(ch in inner for ch in "\x00\r\n<> \t"):
        raise AddressError("forbidden character in address")
    if inner.startswith("@"):
        # A source route. RFC 5321 says receivers should ignore it; we keep it
        # so relay control can refuse it (it is never needed today).
        route, colon, mailbox = inner.partition(":")
        if not colon or len(route) < 2:
            raise AddressError("bad source route")
        split_local_domain(mailbox)
        return inner
    split_local_domain(inner)
    return inner


def split_local_domain(address: str) -> tuple[str, str]:
    """``("user", "example.org")``; AddressError on bad syntax."""
    if address.lower() == "postmaster":
        return address, ""
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        raise AddressError("address must be local-part@domain")
    if not (_DOT_STRING.match(local) or _QUOTED.match(local)):
        raise AddressError("bad local part")
    if len(local) > 64 or len(domain) > 255:
        raise AddressError("address too long")
    if not (domain.startswith("[") and domain.endswith("]")):
        bare = domain[:-1] if domain.endswith(".") else domain
        if not all(_LABEL.match(label) for label in bare.split(".")):
            raise AddressError("bad domain")
    return local, domain


def relay_allowed(address: str, domains: tuple[str, ...] | list[str]) -> bool:
    """True only when ``address`` is plainly a mailbox in one of our domains."""
    if address.lower() == "postmaster":
        return True
    if address.startswith("@"):
        return False
    try:
        local, domain = split_local_domain(address)
    except AddressError:
        return False
    if local.startswith('"'):
        if "@" in local or "%" in local or "!" in local:
            return False
    elif "%" in local or "!" in local:
        return False
    if domain.startswith("["):
        return False
    domain = domain.lower()
    if domain.endswith("."):
        domain = domain[:-1]
    for entry in domains:
        ours = entry.lower().rstrip(".")
        if ours.startswith("."):
            if domain.endswith(ours):
                return True
        elif domain == ours:
            return True
    return False
