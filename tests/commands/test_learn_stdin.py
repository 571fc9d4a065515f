"""``mailmoat learn --spam|--ham|--forget -`` as a pipe script runs it, and
``mailmoat model list|rollback``: real processes, a model file and a store."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gateway_harness import toml_dumps
from mailmoat.classify import Classifier, load_from_store
from mailmoat.classify.testing import synthetic_corpus
from mailmoat.message import parse_message
from mailmoat.store.sqlite import SqliteStore

MESSAGE = synthetic_corpus(2, seed=31)[1][1]


def mailmoat(*args: str, stdin: bytes = b"", cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mailmoat", *args],
        input=stdin.decode("latin-1"),
        capture_output=True,
        text=True,
        encoding="latin-1",
        cwd=cwd,
        timeout=120,
        check=False,
    )


def write_config(tmp_path: Path, model_path: str) -> Path:
    config = tmp_path / "mailmoat.toml"
    config.write_text(
        toml_dumps(
            {
                "store": {"url": f"sqlite:///{tmp_path / 'store.db'}"},
                "classifier": {"model_path": model_path, "model_versions": 5},
            }
        )
    )
    return config


def current_score(tmp_path: Path, mode: str) -> float:
    if mode == "file":
        return Classifier.load(tmp_path / "model.bin").score(parse_message(MESSAGE))
    import asyncio

    async def read() -> float:
        store = SqliteStore(str(tmp_path / "store.db"))
        try:
            model = await load_from_store(store)
        finally:
            await store.close()
        return Classifier(model).score(parse_message(MESSAGE)) if model else -1.0

    return asyncio.run(read())


@pytest.mark.parametrize("mode", ["file", "store"])
def test_piped_spam_then_forget_moves_the_score_and_back(tmp_path: Path, mode: str) -> None:
    model_path = str(tmp_path / "model.bin") if mode == "file" else ""
    config = str(write_config(tmp_path, model_path))
    before = Classifier.load().score(parse_message(MESSAGE))  # the shipped model seeds both

    learned = mailmoat("learn", "--config", config, "--spam", "-", stdin=MESSAGE, cwd=tmp_path)
    assert learned.returncode == 0, learned.stderr
    assert "1 learned" in learned.stdout and "model version 1" in learned.stdout
    as_spam = current_score(tmp_path, mode)
    assert as_spam > before + 0.1

    # The IMAP server's copy carries its own headers: still the same message.
    relayed = b"Return-Path: <x@y>\nX-Spam-Flag: YES\n" + MESSAGE.replace(b"\n", b"\r\n")
    again = mailmoat("learn", "--config", config, "--spam", "-", stdin=relayed, cwd=tmp_path)
    assert "1 unchanged" in again.stdout and current_score(tmp_path, mode) == as_spam

    forgot = mailmoat("learn", "--config", config, "--forget", "-", stdin=relayed, cwd=tmp_path)
    assert forgot.returncode == 0 and "1 forgotten" in forgot.stdout, forgot.stderr
    assert current_score(tmp_path, mode) == pytest.approx(before, abs=0.01)

    listing = mailmoat("model", "list", "--config", config, cwd=tmp_path)
    assert listing.returncode == 0
    assert "current: version 2" in listing.stdout
    assert [line.split()[0] for line in listing.stdout.splitlines()[1:]] == ["2", "1"]
    back = mailmoat("model", "rollback", "1", "--config", config, cwd=tmp_path)
    assert back.returncode == 0 and "saved as version 3" in back.stdout, back.stderr
    assert current_score(tmp_path, mode) == pytest.approx(as_spam, abs=1e-6)
    missing = mailmoat("model", "rollback", "9", "--config", config, cwd=tmp_path)
    assert missing.returncode == 2 and "version 9 is not kept (kept: 3, 2, 1)" in missing.stderr


def test_bad_input_is_a_clear_error(tmp_path: Path) -> None:
    config = str(write_config(tmp_path, str(tmp_path / "model.bin")))
    empty = mailmoat("learn", "--config", config, "--spam", "-", stdin=b"", cwd=tmp_path)
    assert empty.returncode == 2 and "empty message" in empty.stderr
    assert "Traceback" not in empty.stderr
    twice = mailmoat("learn", "--config", config, "--spam", "-", "--ham", "-", cwd=tmp_path)
    assert twice.returncode == 2 and "once" in twice.stderr
    (tmp_path / "model.bin").write_bytes(b"not a model")
    broken = mailmoat("learn", "--config", config, "--ham", "-", stdin=MESSAGE, cwd=tmp_path)
    assert broken.returncode == 2 and "not a mailmoat model" in broken.stderr
    assert "Traceback" not in broken.stderr
    binary = bytes(range(256)) * 4
    (tmp_path / "model.bin").unlink()
    raw = mailmoat("learn", "--config", config, "--spam", "-", stdin=binary, cwd=tmp_path)
    assert raw.returncode == 0 and "1 learned" in raw.stdout, raw.stderr
