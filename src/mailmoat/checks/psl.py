"""Registered (organizational) domains from the offline Public Suffix List.

Contract: ``registered_domain(name)`` returns the public suffix plus one
label (``a.b.example.co.uk`` -> ``example.co.uk``); a name that is itself a
public suffix (or empty) returns "". Uses the ``publicsuffixlist`` package's
bundled copy (ICANN and private sections), loaded once; never touches the
network and never raises. ``load()`` reads the list now (about a second
of CPU) so that checks built at startup do not make a first message wait.
"""

from __future__ import annotations

from functools import lru_cache

from publicsuffixlist import PublicSuffixList


@lru_cache(maxsize=1)
def _psl() -> PublicSuffixList:
    return PublicSuffixList()


def load() -> None:
    _psl()


@lru_cache(maxsize=16384)
def registered_domain(name: str) -> str:
    host = name.strip().lower().rstrip(".")
    if not host or ".." in host:
        return ""
    try:
        return _psl().privatesuffix(host) or ""
    except (ValueError, UnicodeError):
        return ""
