"""Hostile messages through every issue-5 check at once: symbols or logs, bounded time, no crash."""

from __future__ import annotations

import asyncio
import base64
import time

import dkim as dkimpy
import pytest

from authfakes import FakeResolver, make_tx
from mailmoat.checks import attachments, auth_results, bulk, dkim, dmarc, rules, spf, urlbl
from mailmoat.checks.base import Services
from mailmoat.config import Config, UrlblConfig
from mailmoat.core.symbols import Stage
from mailmoat.pipeline import Pipeline
from mailmoat.store.sqlite import SqliteStore


def run_all(data: bytes, table: dict[tuple[str, str], object] | None = None) -> set[str]:
    config = Config(urlbl=UrlblConfig(zones=("DBL:dbl.test=127.0.1.[2..199]*4",)))
    services = Services(
        config=config, resolver=FakeResolver(table or {}), store=SqliteStore(":memory:")
    )
    checks = []
    for module in (spf, dkim, dmarc, auth_results, urlbl, rules, attachments, bulk):
        checks.extend(module.build(services))
    tx = make_tx(data)
    asyncio.run(Pipeline(services, checks).run(Stage.DATA, tx))
    failed = [s for s in tx.symbols if s.name.startswith("CHECK_")]
    assert failed == [], failed
    return {s.name for s in tx.symbols}


HOSTILE = {
    "10k urls": b"Subject: x\r\n\r\n"
    + b" ".join(b"http://h%d.example%d.com/%s" % (n, n, b"a" * 50) for n in range(10_000)),
    "garbage urls": b"Subject: x\r\n\r\n"
    + b"http://[::1 http://%zz%zz/ hxxp://a[.]b[.] http://\xff\xfe.com/ http://a@@b@ "
    + b"http://"
    + b"a." * 300
    + b"com/ "
    + b"http://%" * 1000,
    "header flood": b"".join(
        b"DKIM-Signature: v=1; d=x%d.test; s=s; b=A; bh=A\r\n" % n for n in range(500)
    )
    + b"From: a@b.test\r\n\r\nbody\r\n",
    "binary": bytes(range(256)) * 400,
    "no header end": b"From: a@b.test\r\nSubject: " + b"x" * 100_000,
    "many from": b"From: a@x.test\r\n" * 200 + b"\r\nbody\r\n",
    "huge line": b"From: a@b.test\r\n\r\n" + b"word " * 400_000,
}


@pytest.mark.parametrize("label", sorted(HOSTILE))
def test_hostile_messages_are_bounded(label: str) -> None:
    started = time.monotonic()
    run_all(HOSTILE[label])
    assert time.monotonic() - started < 10, label


ED25519_SIG = (
    b"DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed; d=example.org; s=ed;"
    b" h=from; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=AAAA\r\n"
)
ED25519_KEY: dict[tuple[str, str], object] = {
    ("ed._domainkey.example.org", "TXT"): [
        f"v=DKIM1; k=ed25519; p={base64.b64encode(bytes(range(32))).decode()}"
    ]
}


def test_forged_ed25519_signature_fails_not_a_crash() -> None:
    symbols = run_all(ED25519_SIG + b"From: a@example.org\r\n\r\n", ED25519_KEY)
    assert "DKIM_VALID" not in symbols and "DKIM_UNSUPPORTED" not in symbols
    assert symbols & {"DKIM_INVALID", "DKIM_PERMERROR"}


def test_ed25519_without_pynacl_is_unsupported_not_a_crash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # dkimpy imports nacl optionally and raises NaClNotFoundError when the name is
    # missing: simulate a deployment without PyNaCl.
    monkeypatch.delattr(dkimpy, "nacl")
    symbols = run_all(ED25519_SIG + b"From: a@example.org\r\n\r\n", ED25519_KEY)
    assert "DKIM_UNSUPPORTED" in symbols
