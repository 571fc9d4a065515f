"""Scripted checks and a front runtime for the milter and policy front tests.

The checks react to markers, so each test states the verdict it wants:
client 127.0.0.66 / 192.0.2.66 is denied (forced reject, applied at RCPT),
recipients starting with ``grey`` are soft-rejected, and at DATA the body
markers XSPAM (score 20: reject), XQUAR (11: quarantine), XTAG (7: tagged)
and XDISCARD (forced discard). Every message gets an Authentication-Results
field added and a forged one removed.
"""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar

from mailmoat.checks.base import Check, Services
from mailmoat.config import ActionsConfig, Config, StatsConfig
from mailmoat.core.record import TransactionRecord
from mailmoat.core.symbols import Action, Evidence, Forced, Precedence, Stage
from mailmoat.core.transaction import Transaction
from mailmoat.pipeline import Pipeline
from mailmoat.runtime import DOORS, Runtime
from mailmoat.store.sqlite import SqliteStore

DENIED_CLIENTS = ("127.0.0.66", "192.0.2.66")
AUTH_RESULTS = ("Authentication-Results", "mx.mailmoat.test; spf=pass smtp.mailfrom=ham.test")
FORGED = ("Authentication-Results", "mx.mailmoat.test; dkim=pass (forged)")


class DenyClient(Check):
    name: ClassVar[str] = "test_deny"
    stage: ClassVar[str] = Stage.CONNECT

    async def run(self, tx: Transaction, evidence: Evidence) -> None:
        if tx.session.client_ip in DENIED_CLIENTS:
            evidence.add("TEST_DENIED", 0.0)
            evidence.force(
                Forced(
                    Action.REJECT,
                    Precedence.PERMANENT_DENY,
                    "deny_list",
                    554,
                    "5.7.1",
                    "Client host rejected: denied",
                )
            )


class GreyRcpt(Check):
    name: ClassVar[str] = "test_grey"
    stage: ClassVar[str] = Stage.RCPT

    async def run(self, tx: Transaction, evidence: Evidence) -> None:
        if tx.current_rcpt.startswith("grey"):
            evidence.force(
                Forced(
                    Action.SOFT_REJECT,
                    Precedence.TEST,
                    "greylist",
                    451,
                    "4.7.1",
                    "Greylisted, try again later",
                )
            )


class Markers(Check):
    name: ClassVar[str] = "test_markers"
    stage: ClassVar[str] = Stage.DATA

    async def run(self, tx: Transaction, evidence: Evidence) -> None:
        for marker, score in ((b"XSPAM", 20.0), (b"XQUAR", 11.0), (b"XTAG", 7.0)):
            if marker in tx.data:
                evidence.add(f"TEST_{marker.decode()}", score)
        if b"XDISCARD" in tx.data:
            evidence.force(Forced(Action.DISCARD, Precedence.TEST, "discard"))
        tx.added_headers.append(AUTH_RESULTS)
        tx.removed_headers.append(FORGED)


def front_config(**sections: object) -> Config:
    config = Config()
    config = replace(
        config,
        actions=ActionsConfig(reject=15.0, quarantine=10.0, add_header=6.0),
        stats=StatsConfig(enabled=False),
    )
    return replace(config, **sections)  # type: ignore[arg-type]


def scripted_runtime(config: Config | None = None) -> tuple[Runtime, list[TransactionRecord]]:
    config = config or front_config()
    services = Services(config, store=SqliteStore(":memory:"))
    pipeline = Pipeline(services, [DenyClient(), GreyRcpt(), Markers()])
    records: list[TransactionRecord] = []
    pipeline.recorders.append(records.append)
    return Runtime(config, services, pipeline, DOORS["milter"]), records
