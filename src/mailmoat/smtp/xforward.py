"""XFORWARD (Postfix's extension): the real client behind a trusted proxy.

When Postfix runs mailmoat as its ``smtpd_proxy_filter``, every connection
comes from Postfix. Postfix then sends ``XFORWARD ADDR=... NAME=... HELO=...
PROTO=...`` before each MAIL FROM if our EHLO offers it. We offer it only to
clients in ``smtp.xforward_hosts`` (never to the world: it would let anyone
claim any address), and screen each transaction as coming from the
forwarded client.

Contract: ``parse_xforward(arg)`` returns the attributes (upper-case names,
``[UNAVAILABLE]``/``[TEMPUNAVAIL]`` as empty strings) or raises ValueError;
``forwarded_session`` builds the ``Session`` for them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from mailmoat.core.transaction import Session

ATTRIBUTES = ("NAME", "ADDR", "PORT", "PROTO", "HELO", "IDENT", "SOURCE")
OFFERED = "XFORWARD NAME ADDR PORT PROTO HELO"
_UNKNOWN = ("[UNAVAILABLE]", "[TEMPUNAVAIL]")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def trusted_networks(entries: Iterable[str]) -> list[Network]:
    return [ipaddress.ip_network(entry, strict=False) for entry in entries]


def is_trusted(address: str, networks: list[Network]) -> bool:
    if not networks:  # the default: no address parsed per connection
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def parse_xforward(arg: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for item in arg.split():
        name, equals, value = item.partition("=")
        name = name.upper()
        if not equals or name not in ATTRIBUTES:
            raise ValueError(f"bad attribute {item[:40]!r}")
        found[name] = "" if value.upper() in _UNKNOWN else value
    if not found:
        raise ValueError("no attributes")
    if found.get("ADDR"):
        address = found["ADDR"].removeprefix("IPV6:").removeprefix("IPv6:")
        ipaddress.ip_address(address)
        found["ADDR"] = address
    return found


def forwarded_session(proxy: Session, attributes: dict[str, str]) -> Session:
    port = attributes.get("PORT", "")
    return Session(
        client_ip=attributes.get("ADDR") or proxy.client_ip,
        client_port=int(port) if port.isdigit() else 0,
        client_rdns=attributes.get("NAME", ""),
        helo=attributes.get("HELO") or proxy.helo,
        esmtp=attributes.get("PROTO", "ESMTP").upper() != "SMTP",
        tls=proxy.tls,
        front=proxy.front,
    )
