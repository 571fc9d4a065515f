"""The rules check: helpers never reported, bad files never fatal."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from authfakes import make_tx, names
from mailmoat.checks.base import Services
from mailmoat.checks.rules import RulesCheck, build
from mailmoat.config import Config, RulesConfig
from mailmoat.core.symbols import Evidence
from mailmoat.rules import load_rules

RULES = """
[rules.__HELPER]
body = 'secret'

[rules.SECRET_META]
meta = "__HELPER"
score = 2.5
description = "says secret"
"""


def test_helpers_are_not_reported_metas_are() -> None:
    rules, errors = load_rules([("t.toml", RULES)])
    assert errors == []
    evidence = Evidence()
    asyncio.run(RulesCheck(rules).run(make_tx(b"Subject: x\r\n\r\nsecret\r\n"), evidence))
    assert names(evidence) == {"SECRET_META": 2.5}
    evidence = Evidence()
    asyncio.run(RulesCheck(rules).run(make_tx(b"Subject: x\r\n\r\nnothing\r\n"), evidence))
    assert names(evidence) == {}


def test_invalid_toml_file_is_skipped_not_fatal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[rules.X\nbody = 'x'\n")
    caplog.set_level(logging.ERROR)
    checks = build(
        Services(config=Config(rules=RulesConfig(files=(str(bad), str(tmp_path / "missing.toml")))))
    )
    assert checks, "the bundled rules still load"
    assert f"{bad}: not valid TOML" in caplog.text
    assert "missing.toml unreadable" in caplog.text
