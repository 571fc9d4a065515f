"""The classifier check: symbols from the model's probability, score curves."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from mailmoat.checks.base import Services
from mailmoat.checks.classifier import ClassifierCheck, build, curve_score
from mailmoat.classify import Classifier, FeatureConfig
from mailmoat.classify.testing import synthetic_corpus
from mailmoat.config import ClassifierConfig, Config, ConfigError, load_config
from mailmoat.core.symbols import Evidence
from mailmoat.core.transaction import Session, Transaction
from mailmoat.message import parse_message

CURVE = ((0.9, 1.0), (0.99, 3.0), (0.999, 5.0))


@pytest.mark.parametrize(
    ("label", "probability", "expected"),
    [
        ("below the curve", 0.5, 1.0),
        ("first point", 0.9, 1.0),
        ("halfway", 0.945, 2.0),
        ("second point", 0.99, 3.0),
        ("beyond the end", 1.0, 5.0),
    ],
)
def test_curve_score(label: str, probability: float, expected: float) -> None:
    assert curve_score(CURVE, probability) == pytest.approx(expected), label


def test_ham_curve_falls() -> None:
    ham = ClassifierConfig().ham_curve
    assert curve_score(ham, 0.0001) == -3.0
    assert curve_score(ham, 0.1) == -0.5
    assert curve_score((), 0.5) == 0.0


def test_default_spam_curve_tags_alone_and_never_quarantines_alone() -> None:
    # docs/classifier.md: 5 (add_header) from 0.99, where no held-out ham
    # was flagged; below quarantine (10) everywhere, so refusing or
    # quarantining always takes independent evidence.
    config = ClassifierConfig()
    scores = [curve_score(config.spam_curve, p / 10000) for p in range(8000, 10001)]
    assert scores == sorted(scores)
    assert curve_score(config.spam_curve, 0.99) == 5.0
    assert curve_score(config.spam_curve, 0.985) < 5.0
    assert max(scores) < 10.0
    assert config.spam_threshold == config.spam_curve[0][0]


def trained_check(config: ClassifierConfig | None = None) -> ClassifierCheck:
    classifier = Classifier.empty(FeatureConfig(hash_bits=16))
    for _ in range(3):
        for is_spam, raw in synthetic_corpus(90):
            classifier.learn(parse_message(raw), is_spam, force=True)
    classifier.model.calibration = (3.0, 0.0)
    return ClassifierCheck(classifier, config or ClassifierConfig())


async def run_check(check: ClassifierCheck, raw: bytes) -> Evidence:
    tx = Transaction(Session(client_ip="192.0.2.1"), data=raw)
    evidence = Evidence()
    await check.run(tx, evidence)
    return evidence


async def test_spam_and_ham_symbols() -> None:
    check = trained_check()
    spam_raw = next(raw for is_spam, raw in synthetic_corpus(10, seed=5) if is_spam)
    ham_raw = next(raw for is_spam, raw in synthetic_corpus(10, seed=5) if not is_spam)
    (spam,) = (await run_check(check, spam_raw)).symbols
    (ham,) = (await run_check(check, ham_raw)).symbols
    assert spam.name == "BAYES_SPAM" and 1.0 <= spam.score <= 7.0 and spam.detail.startswith("p=")
    assert ham.name == "BAYES_HAM" and -3.0 <= ham.score <= -0.5


async def test_nothing_in_the_middle() -> None:
    config = ClassifierConfig(spam_threshold=1.1, ham_threshold=-0.1)
    raw = synthetic_corpus(1)[0][1]
    assert (await run_check(trained_check(config), raw)).symbols == []


async def test_check_reuses_the_parsed_message() -> None:
    check = trained_check()
    tx = Transaction(Session(client_ip="192.0.2.1"), data=synthetic_corpus(1)[0][1])
    parsed = tx.message
    await check.run(tx, Evidence())
    assert tx.message is parsed


def test_build_with_shipped_default_and_model_swap() -> None:
    services = Services(Config())
    (check,) = build(services)
    assert isinstance(check, ClassifierCheck)
    shipped = check.classifier
    newer = trained_check().classifier.model
    services.model.publish(newer)
    assert check.classifier.model is newer
    # A rebuild (reload) around the same holder scores with the published model.
    (rebuilt,) = build(dataclasses.replace(services, config=Config()))
    assert isinstance(rebuilt, ClassifierCheck) and rebuilt.classifier.model is newer
    assert shipped.model is not newer


def test_build_with_model_file(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    trained_check().classifier.save(path)
    config = dataclasses.replace(Config(), classifier=ClassifierConfig(model_path=str(path)))
    (check,) = build(Services(config))
    assert isinstance(check, ClassifierCheck)
    assert check.classifier.model.features.hash_bits == 16


def test_config_section(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        "[classifier]\nspam_threshold = 0.95\nspam_curve = [[0.95, 2.0], [0.999, 6.0]]\n"
    )
    config = load_config(path).classifier
    assert config.spam_threshold == 0.95
    assert config.spam_curve == ((0.95, 2.0), (0.999, 6.0))
    path.write_text("[classifier]\nspam_treshold = 0.95\n")
    with pytest.raises(ConfigError):
        load_config(path)


def test_unreadable_model_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.bin"
    path.write_bytes(b"not a model")
    config = dataclasses.replace(Config(), classifier=ClassifierConfig(model_path=str(path)))
    with pytest.raises(ConfigError):
        build(Services(config))
