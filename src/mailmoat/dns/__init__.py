"""DNS: the resolver interface and its cached dnspython implementation.

Checks depend on the ``Resolver`` protocol only; ``CachingResolver`` is the
production implementation, ``resolver_from_config`` builds it from ``[dns]``;
``OfflineResolver`` sends no query (``mailmoat scan`` without a config).
"""

from __future__ import annotations

from mailmoat.config import DnsConfig
from mailmoat.dns.base import DnsAnswer, DnsStatus, OfflineResolver, Resolver
from mailmoat.dns.resolver import CachingResolver, reverse_name


def resolver_from_config(config: DnsConfig) -> CachingResolver:
    return CachingResolver(
        config.nameserver,
        timeout=config.timeout,
        min_ttl=config.min_ttl,
        max_ttl=config.max_ttl,
        cache_size=config.cache_size,
    )


__all__ = [
    "CachingResolver",
    "DnsAnswer",
    "DnsStatus",
    "OfflineResolver",
    "Resolver",
    "resolver_from_config",
    "reverse_name",
]
