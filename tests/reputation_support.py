"""Shared helpers of the reputation tests: records, configs, the test table."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from mailmoat.config import Config, ReputationConfig
from mailmoat.core.record import TransactionRecord

PREFIXES = Path(__file__).parent / "reputation" / "prefixes.csv"


def reputation_config(**settings: object) -> Config:
    base = ReputationConfig(prefix_table=str(PREFIXES), flush_interval=0.1)
    return dataclasses.replace(Config(), reputation=dataclasses.replace(base, **settings))  # type: ignore[arg-type]


def record(
    ip: str,
    action: str = "reject",
    reason: str = "score",
    when: float = 1_700_000_000.0,
    **more: object,
) -> TransactionRecord:
    fields: dict[str, object] = {
        "queue_id": "Q1",
        "client_ip": ip,
        "client_rdns": "",
        "helo": "bot.example",
        "mail_from": "spammer@storm.example",
        "rcpts": ("user@example.org",),
        "action": action,
        "reason": reason,
        "score": 20.0,
        "symbols": (),
        "time": when,
    }
    fields.update(more)
    return TransactionRecord(**fields)  # type: ignore[arg-type]
