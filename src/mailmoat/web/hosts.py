"""Which Host and Origin the dashboard answers to (DNS rebinding guard).

Contract: ``AllowedHosts.from_config(web)`` builds the set of host names the
dashboard may be reached by: ``localhost``, every loopback address, the host
of ``web.listen`` (unless it is a wildcard such as ``0.0.0.0``) and the
entries of ``web.allowed_hosts`` (a name, an address, ``.example.org`` for a
domain and its subdomains, or ``*`` for any host: only behind a proxy that
checks Host itself). ``permits_host(header)`` judges a ``Host`` header and
``permits_origin(header)`` an ``Origin`` header against that set; both
return False, never raise, on malformed input. A page fetched through a
rebound DNS name carries that name in Host and Origin, so it is refused.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from mailmoat.config import ConfigError, WebConfig, parse_hostport

_LOCAL_NAMES = frozenset({"localhost", "localhost.", "ip6-localhost", "ip6-loopback"})
_WILDCARDS = frozenset({"0.0.0.0", "::", ""})


def _normal(host: str) -> str:
    return host.strip().lower().removeprefix("[").removesuffix("]")


def _split_host(header: str) -> str | None:
    """The host name of a ``Host`` header (``name``, ``name:port``,
    ``[v6]:port``), lower case, brackets removed; None when malformed."""
    text = header.strip()
    if not text or any(c in text for c in "/?#@\\ \t\x00"):
        return None
    try:
        parts = urlsplit(f"//{text}")
        host = parts.hostname
        _ = parts.port  # ValueError for a bad port
    except ValueError:
        return None
    return host or None


@dataclass(frozen=True)
class AllowedHosts:
    names: frozenset[str]
    domains: tuple[str, ...]  # ".example.org" entries
    any_host: bool = False

    @classmethod
    def from_config(cls, web: WebConfig) -> AllowedHosts:
        names = set(_LOCAL_NAMES)
        try:
            listen_host, _port = parse_hostport(web.listen, where="web.listen", default_port=8025)
        except ConfigError:
            listen_host = ""
        if _normal(listen_host) not in _WILDCARDS:
            names.add(_normal(listen_host))
        domains: list[str] = []
        any_host = False
        for entry in web.allowed_hosts:
            item = _normal(entry)
            if item == "*":
                any_host = True
            elif item.startswith("."):
                domains.append(item)
            elif item:
                names.add(item)
        return cls(frozenset(names), tuple(domains), any_host)

    def permits_name(self, host: str) -> bool:
        host = _normal(host)
        if not host:
            return False
        if self.any_host or host in self.names:
            return True
        try:
            if ipaddress.ip_address(host).is_loopback:
                return True
        except ValueError:
            pass
        return any(host == d[1:] or host.endswith(d) for d in self.domains)

    def permits_host(self, header: str | None) -> bool:
        """A request's ``Host`` header (required: HTTP/1.1 clients send it)."""
        if header is None:
            return False
        host = _split_host(header)
        return host is not None and self.permits_name(host)

    def permits_origin(self, header: str) -> bool:
        """A browser's ``Origin`` header: an http(s) origin on an allowed host."""
        try:
            parts = urlsplit(header.strip())
        except ValueError:
            return False
        if parts.scheme not in ("http", "https") or parts.path not in ("", "/"):
            return False
        host = _split_host(parts.netloc)
        return host is not None and self.permits_name(host)
