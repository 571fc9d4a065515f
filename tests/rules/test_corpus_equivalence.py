"""The engine path and the pure-Python path give the same hits on real mail.

Every 15th message of the shared corpus through SpamAssassin's stock rules,
once with Hyperscan and once without. Needs the corpus and the stock rules:
skips locally without them, fails under CI=true.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from authfakes import make_tx
from mailmoat.classify.corpus import all_sets, find_corpus, unpack
from mailmoat.config import RulesConfig
from mailmoat.rules import engine
from mailmoat.rules.sources import PACKAGE_DIR, load_configured
from servers import in_ci

pytestmark = pytest.mark.corpus


def _require(ok: bool, message: str) -> None:
    if not ok:
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)


def test_engine_and_pure_python_agree_on_the_corpus() -> None:
    root = find_corpus(Path(__file__).resolve())
    _require(root is not None, "shared corpus not found")
    _require(PACKAGE_DIR.is_dir(), "SpamAssassin rules not installed")
    _require(engine.available(), "hyperscan not installed")
    assert root is not None
    cache = Path(tempfile.gettempdir()) / f"mailmoat-corpus-{os.getuid()}"
    files = unpack(root, cache, all_sets(root))[::15]
    assert len(files) >= 400
    with_engine, _ = load_configured(RulesConfig(), use_engine=True)
    pure, _ = load_configured(RulesConfig(), use_engine=False)
    assert with_engine.engine_rules > 1000 and pure.engine_rules == 0
    hits = 0
    for _, path in files:
        tx = make_tx(path.read_bytes())
        got = with_engine.match_counts(tx)
        assert got == pure.match_counts(tx), path
        hits += len(got)
    assert hits > len(files) * 10  # the rules do fire on real mail
