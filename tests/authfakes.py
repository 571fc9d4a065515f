"""In-memory fakes for the sender-authentication and URL blocklist tests."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from mailmoat.checks.base import Services
from mailmoat.config import Config
from mailmoat.core.symbols import Evidence
from mailmoat.core.transaction import Session, Transaction
from mailmoat.dns.base import DnsAnswer


class FakeResolver:
    """Answers from a table: {(name, type): [records] | "timeout" | "servfail"};
    anything else is NXDOMAIN. Counts queries."""

    def __init__(self, table: Mapping[tuple[str, str], object], delay: float = 0.0) -> None:
        self.table = {(n.lower().rstrip("."), t): v for (n, t), v in table.items()}
        self.queries: list[tuple[str, str]] = []
        self.delay = delay

    async def resolve(self, name: str, rdtype: str) -> DnsAnswer:
        key = (name.lower().rstrip("."), rdtype)
        self.queries.append(key)
        if self.delay:
            await asyncio.sleep(self.delay)
        value = self.table.get(key)
        if value is None:
            return DnsAnswer("nxdomain")
        if value in ("timeout", "servfail"):
            if value == "timeout":
                await asyncio.sleep(3600)
            return DnsAnswer("servfail")
        assert isinstance(value, list | tuple)
        return DnsAnswer("ok", tuple(str(v) for v in value), 60)


def make_tx(
    data: bytes = b"",
    *,
    ip: str = "192.0.2.10",
    helo: str = "mail.example.org",
    mail_from: str = "alice@example.org",
) -> Transaction:
    session = Session(client_ip=ip, helo=helo)
    return Transaction(session=session, mail_from=mail_from, rcpts=["bob@example.net"], data=data)


def services(config: Config | None = None, **kwargs: object) -> Services:
    return Services(config=config or Config(), **kwargs)  # type: ignore[arg-type]


def names(evidence: Evidence) -> dict[str, float]:
    return {s.name: s.score for s in evidence.symbols}


def rsa_key(bits: int = 1024) -> tuple[bytes, str]:
    """(PEM private key, DKIM TXT record) made with the openssl command."""
    import base64
    import subprocess

    from servers import require_binary

    # Skips locally, fails under CI=true when the openssl command is missing.
    openssl = require_binary("openssl", "openssl")
    private = subprocess.run([openssl, "genrsa", str(bits)], capture_output=True, check=True).stdout
    public = subprocess.run(
        [openssl, "rsa", "-pubout", "-outform", "DER"],
        input=private,
        capture_output=True,
        check=True,
    ).stdout
    return private, "v=DKIM1; k=rsa; p=" + base64.b64encode(public).decode()


def run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]
