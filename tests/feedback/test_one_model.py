"""Done-when: ``mailmoat learn`` and a running gateway use the same model after
a learn, with the model in a file (``classifier.model_path``) and in the store.

A real ``mailmoat serve`` process (two workers) scores a message delivered
over SMTP on loopback; ``mailmoat learn --spam -`` (another process) learns
it; every worker picks the new version up and the BAYES_* symbol it writes
into the delivered message is the one the learned model gives.
"""

from __future__ import annotations

import asyncio
import re
import smtplib
import subprocess
import sys
from pathlib import Path

import pytest

from gateway_harness import toml_dumps
from mailmoat.checks.classifier import curve_score
from mailmoat.classify import Classifier, FeatureConfig, Model, load_file, load_from_store
from mailmoat.classify.testing import synthetic_corpus
from mailmoat.config import ClassifierConfig
from mailmoat.message import parse_message
from mailmoat.store.sqlite import SqliteStore
from serve_harness import MailmoatProcess
from servers import free_port

pytestmark = pytest.mark.integration

MESSAGE = synthetic_corpus(2, seed=41)[1][1]
WORKERS = 2


def expected_symbol(model: Model) -> tuple[str, float]:
    """The BAYES_* symbol and score the model gives MESSAGE (("", 0) for none)."""
    settings = ClassifierConfig()
    probability = Classifier(model).score(parse_message(MESSAGE))
    if probability >= settings.spam_threshold:
        return "BAYES_SPAM", curve_score(settings.spam_curve, probability)
    if probability <= settings.ham_threshold:
        return "BAYES_HAM", curve_score(settings.ham_curve, probability)
    return "", 0.0


def same(found: tuple[str, float], expected: tuple[str, float]) -> bool:
    """Equal up to the header's two decimals and the gateway's own parse of
    the received copy (CRLF line ends, its Received field)."""
    return found[0] == expected[0] and abs(found[1] - expected[1]) <= 0.03


def home_model(tmp_path: Path, mode: str) -> Model:
    if mode == "file":
        return load_file(tmp_path / "model.bin")

    async def read() -> Model:
        store = SqliteStore(str(tmp_path / "store.db"))
        try:
            found = await load_from_store(store)
        finally:
            await store.close()
        return found if found is not None else Classifier.load().model

    return asyncio.run(read())


def gateway_symbol(process: MailmoatProcess, maildir: Path) -> tuple[str, float]:
    """Send MESSAGE through the gateway; the BAYES_* symbol it delivered with."""
    before = set((maildir / "new").glob("*")) if (maildir / "new").exists() else set()
    with smtplib.SMTP("127.0.0.1", process.port, timeout=30) as client:
        client.sendmail("dev@lists.example.org", ["bob@example.org"], MESSAGE)
    [new] = set((maildir / "new").glob("*")) - before
    header = re.search(rb"^X-Spam-Symbols: (.*)$", new.read_bytes(), re.M)
    assert header is not None
    found = re.search(r"(BAYES_(?:SPAM|HAM))\(([-\d.]+)\)", header.group(1).decode())
    return (found.group(1), float(found.group(2))) if found else ("", 0.0)


@pytest.mark.parametrize("mode", ["file", "store"])
def test_learn_and_gateway_share_the_model(tmp_path: Path, mode: str) -> None:
    model_path = ""
    if mode == "file":
        model_path = str(tmp_path / "model.bin")
        seed = Classifier.empty(FeatureConfig(hash_bits=16))
        for is_spam, raw in synthetic_corpus(90):
            seed.learn(parse_message(raw), is_spam)
        seed.save(model_path)
    process = MailmoatProcess(tmp_path, "serve", free_port())
    process.config_path.write_text(
        toml_dumps(
            {
                "smtp": {"listen": f"127.0.0.1:{process.port}", "workers": WORKERS},
                "web": {"enabled": False},
                "relay": {"domains": ["example.org"]},
                "pregreet": {"delay": 0},
                "greylist": {"enabled": False},
                "dns": {"nameserver": "127.0.0.1:9", "timeout": 0.2},
                "delivery": {"maildir": str(tmp_path / "maildir")},
                "store": {"url": f"sqlite:///{tmp_path / 'store.db'}"},
                "classifier": {"model_path": model_path, "autolearn": False},
                "cluster": {"model_reload_interval": 0.2},
            }
        )
    )
    with process.start(listeners=WORKERS):
        start = home_model(tmp_path, mode)
        assert same(gateway_symbol(process, tmp_path / "maildir"), expected_symbol(start))
        learn = subprocess.run(
            [
                sys.executable,
                "-m",
                "mailmoat",
                "learn",
                "--config",
                str(process.config_path),
                "--spam",
                "-",
            ],
            input=MESSAGE,
            capture_output=True,
            cwd=tmp_path,
            timeout=120,
            check=False,
        )
        assert learn.returncode == 0, learn.stderr
        learned = home_model(tmp_path, mode)
        assert learned.version == 1
        assert expected_symbol(learned)[0] == "BAYES_SPAM"
        assert not same(expected_symbol(learned), expected_symbol(start))
        process.wait_for_log("classifier model version 1 loaded", WORKERS, "load version 1")
        for _ in range(WORKERS * 2):  # whichever worker takes the connection
            found = gateway_symbol(process, tmp_path / "maildir")
            assert same(found, expected_symbol(learned)), (found, expected_symbol(learned))
