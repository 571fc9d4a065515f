"""The feedback loop on its own: learn, repeat, move, forget, versions, rollback.

Both homes (a model file, a SQLite store) run the same cases; the scores are
the real classifier's on synthetic mail.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mailmoat.classify import Classifier, FeatureConfig, ModelConflictError
from mailmoat.classify.testing import synthetic_corpus
from mailmoat.commands.model import rollback
from mailmoat.config import Config
from mailmoat.feedback import (
    FeedbackError,
    FileHome,
    ModelHome,
    StoreHome,
    apply_feedback,
    digest,
    home_for,
)
from mailmoat.message import parse_message
from mailmoat.store.sqlite import SqliteStore

MESSAGE = synthetic_corpus(2, seed=21)[1][1]  # a ham-like message


def seed_model(path: Path) -> None:
    classifier = Classifier.empty(FeatureConfig(hash_bits=16))
    for is_spam, raw in synthetic_corpus(60):
        classifier.learn(parse_message(raw), is_spam)
    classifier.save(path)


@pytest.fixture(params=["file", "store"])
async def home(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ModelHome]:
    if request.param == "file":
        seed_model(tmp_path / "model.bin")
        made: ModelHome = FileHome(tmp_path / "model.bin", keep=3)
        yield made
        await made.close()
    else:
        store = SqliteStore(str(tmp_path / "store.db"))
        yield StoreHome(store, keep=3)
        await store.close()


async def score(home: ModelHome, raw: bytes = MESSAGE) -> float:
    return Classifier(await home.load()).score(parse_message(raw))


async def test_learn_repeat_move_forget(home: ModelHome) -> None:
    before = await score(home)
    learned = await apply_feedback(home, [(MESSAGE, "spam")])
    assert learned.outcomes == ["learned"] and learned.version == 1
    as_spam = await score(home)
    assert as_spam > before + 0.05
    again = await apply_feedback(home, [(MESSAGE, "spam")])
    assert again.outcomes == ["unchanged"] and again.version is None
    assert await score(home) == pytest.approx(as_spam)
    moved = await apply_feedback(home, [(MESSAGE, "ham")])
    assert moved.outcomes == ["moved"] and moved.version == 2
    assert await score(home) < before
    forgotten = await apply_feedback(home, [(MESSAGE, "forget")])
    assert forgotten.outcomes == ["forgotten"]
    # Weights are kept as float16: back to where it was, to that precision.
    assert await score(home) == pytest.approx(before, abs=0.01)
    assert (await apply_feedback(home, [(MESSAGE, "forget")])).outcomes == ["unknown"]


async def test_one_save_for_a_batch_and_duplicates_inside_it(home: ModelHome) -> None:
    result = await apply_feedback(
        home, [(MESSAGE, "spam"), (MESSAGE, "spam"), (MESSAGE, "ham"), (MESSAGE, "forget")]
    )
    assert result.outcomes == ["learned", "unchanged", "moved", "forgotten"]
    assert result.version == 1 and await home.ledger_get(digest(MESSAGE)) is None


def test_digest_ignores_transit_headers_and_line_ends() -> None:
    relayed = (
        b"Received: from mx by imap; Mon, 7 Dec 2026 10:00:00 +0000\r\n"
        b"X-Spam-Status: Yes, score=12\r\n" + MESSAGE.replace(b"\n", b"\r\n") + b"\r\n\r\n"
    )
    assert digest(relayed) == digest(MESSAGE)
    assert digest(MESSAGE.replace(b"Subject:", b"Subject: Re:")) == digest(MESSAGE)
    assert digest(MESSAGE + b"\nmore text\n") != digest(MESSAGE)


async def test_bad_messages(home: ModelHome) -> None:
    with pytest.raises(FeedbackError, match="empty message"):
        await apply_feedback(home, [(b" \r\n", "spam")])
    with pytest.raises(FeedbackError, match="unknown label"):
        await apply_feedback(home, [(MESSAGE, "maybe")])
    # No header, no MIME, not text: learned from the raw bytes all the same.
    blob = bytes(range(256)) * 8
    assert (await apply_feedback(home, [(blob, "spam")])).outcomes == ["learned"]
    assert (await apply_feedback(home, [(blob, "forget")])).outcomes == ["forgotten"]


async def test_versions_kept_and_rollback(
    home: ModelHome, capsys: pytest.CaptureFixture[str]
) -> None:
    mail = synthetic_corpus(5, seed=4)
    for _is_spam, raw in mail:
        await apply_feedback(home, [(raw, "spam")])
    assert [v.version for v in await home.versions()] == [5, 4, 3]  # keep=3
    at_three = Classifier(await home.load_version(3)).score(parse_message(mail[4][1]))  # type: ignore[arg-type]
    assert await rollback(home, 1) == 2
    assert "version 1 is not kept (kept: 5, 4, 3)" in capsys.readouterr().err
    assert await rollback(home, 3) == 0
    current = await home.load()
    assert current.version == 6
    assert Classifier(current).score(parse_message(mail[4][1])) == pytest.approx(at_three)
    # Messages learned after version 3 left the ledger with their steps.
    assert await home.ledger_get(digest(mail[4][1])) is None
    assert await home.ledger_get(digest(mail[2][1])) is not None


async def test_a_stale_save_conflicts_and_feedback_retries(home: ModelHome) -> None:
    stale = await home.load()
    await apply_feedback(home, [(MESSAGE, "spam")])
    with pytest.raises(ModelConflictError):
        await home.save(stale)
    other = synthetic_corpus(3, seed=9)[2][1]
    assert (await apply_feedback(home, [(other, "ham")])).version == 2


def test_home_follows_the_config(tmp_path: Path) -> None:
    store = SqliteStore(":memory:")
    assert isinstance(home_for(Config(), store), StoreHome)
    path = str(tmp_path / "m.bin")
    config = Config()
    from dataclasses import replace

    file_config = replace(config, classifier=replace(config.classifier, model_path=path))
    assert isinstance(home_for(file_config, store), FileHome)
    assert isinstance(home_for(config, None, path), FileHome)
    with pytest.raises(ValueError, match="no store"):
        home_for(config, None)
