"""Learner, calibration, persistence (files and store), thread safety."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from mailmoat.classify import (
    Classifier,
    FeatureConfig,
    Model,
    ModelConflictError,
    ModelFormatError,
    dumps,
    learn_message,
    load_from_store,
    loads,
    save_to_store,
    stored_version,
)
from mailmoat.classify.model import fit_platt
from mailmoat.classify.testing import synthetic_corpus as corpus
from mailmoat.classify.training import calibrated_model, train
from mailmoat.config import Config
from mailmoat.message import parse_message
from mailmoat.store import SqliteStore

SMALL = FeatureConfig(hash_bits=16)


def trained(n: int = 120) -> Classifier:
    classifier = Classifier.empty(SMALL)
    for is_spam, raw in corpus(n):
        classifier.learn(parse_message(raw), is_spam)
    return classifier


def test_learning_moves_scores() -> None:
    classifier = Classifier.empty(SMALL)
    spam, ham = parse_message(corpus(3)[0][1]), parse_message(corpus(3)[1][1])
    assert classifier.score(spam) == pytest.approx(0.5)
    assert classifier.learn(spam, True)
    assert classifier.learn(ham, False)
    assert classifier.score(spam) > 0.5 > classifier.score(ham)


def test_trained_model_separates_unseen_mail() -> None:
    classifier = trained()
    test = corpus(60, seed=99)
    spam = [classifier.score(parse_message(r)) for s, r in test if s]
    ham = [classifier.score(parse_message(r)) for s, r in test if not s]
    assert min(spam) > max(ham)


def test_thick_threshold_skips_confident_messages() -> None:
    model = Model(SMALL, margin_threshold=0.5)
    indices = np.array([1, 2, 3], dtype=np.uint32)
    updates = sum(model.learn(indices, True) for _ in range(50))
    assert updates < 50 and model.margin(indices) >= 0.5
    assert model.learn(indices, True, force=True)


def test_file_roundtrip(tmp_path: Path) -> None:
    classifier = trained()
    classifier.model.calibration = (1.5, -0.25)
    path = tmp_path / "m.bin"
    classifier.save(path)
    again = Classifier.load(path)
    message = parse_message(corpus(1)[0][1])
    assert again.score(message) == pytest.approx(classifier.score(message), abs=1e-3)
    assert again.model.calibration == (1.5, -0.25)
    assert again.model.features == SMALL
    assert dumps(again.model) == path.read_bytes()  # float16 weights are stable


@pytest.mark.parametrize("blob", [b"", b"MMCLS1", b"garbage", b"MMCLS1\x00\x00\x00\x02{}xx"])
def test_bad_model_bytes(blob: bytes) -> None:
    with pytest.raises(ModelFormatError):
        loads(blob)


def test_shipped_default_model_loads_and_is_small() -> None:
    classifier = Classifier.load()
    assert classifier.model.n_learned > 300  # updates made (train on error)
    assert len(dumps(classifier.model)) < 5 * 1024 * 1024
    spam = b"Subject: FREE money!!!\n\nClick here to claim your prize http://x.example.biz/\n"
    assert 0.0 <= classifier.score(parse_message(spam)) <= 1.0


async def test_store_roundtrip_and_versions() -> None:
    store = SqliteStore(":memory:")
    model = trained().model
    assert await stored_version(store) is None
    assert await load_from_store(store) is None
    assert await save_to_store(model, store) == 1
    assert await save_to_store(model, store) == 2
    loaded = await load_from_store(store)
    assert loaded is not None and loaded.version == 2 and await stored_version(store) == 2
    stale = model.copy()
    stale.version = 1
    with pytest.raises(ModelConflictError):
        await save_to_store(stale, store)
    await store.close()


async def test_learn_message_feeds_the_shared_model() -> None:
    store = SqliteStore(":memory:")
    raw = corpus(1)[0][1]
    result = await learn_message(config=Config(), store=store, message=raw, is_spam=True)
    assert result == "1 learned; model version 1"
    again = await learn_message(config=Config(), store=store, message=raw, is_spam=True)
    assert again == "1 unchanged; model unchanged" and await stored_version(store) == 1
    moved = await learn_message(config=Config(), store=store, message=raw, is_spam=False)
    assert moved == "1 moved; model version 2" and await stored_version(store) == 2
    await store.close()


def test_scoring_while_learning_in_threads() -> None:
    classifier = trained(30)
    messages = [(s, parse_message(r)) for s, r in corpus(40, seed=3)]
    errors: list[BaseException] = []

    def learner() -> None:
        for _ in range(5):
            for is_spam, message in messages:
                classifier.learn(message, is_spam, force=True)

    def scorer() -> None:
        try:
            for _ in range(5):
                for _, message in messages:
                    assert 0.0 <= classifier.score(message) <= 1.0
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=learner)] + [
        threading.Thread(target=scorer) for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors


def test_platt_fit() -> None:
    margins = [-3.0, -2.0, -1.0, -0.5, 0.5, 1.0, 2.0, 3.0, 0.2, -0.2]
    labels = [False, False, False, True, False, True, True, True, True, False]
    a, _ = fit_platt(margins, labels)
    assert a > 0
    assert fit_platt([1.0], [True]) == (1.0, 0.0)


def test_calibrated_model_is_deterministic() -> None:
    samples = [
        (Classifier.empty(SMALL).features(parse_message(raw)), is_spam)
        for is_spam, raw in corpus(60)
    ]
    first = calibrated_model(samples, SMALL, passes=2)
    second = calibrated_model(samples, SMALL, passes=2)
    assert dumps(first) == dumps(second)
    assert train(Model(SMALL), samples) > 0
