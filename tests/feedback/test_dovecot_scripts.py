"""docs/feedback.md's Dovecot pipe programs, run as written, and the HTTP
learn API's answers, against a real ``mailmoat serve`` (gateway and
dashboard in one process) on loopback.

What Dovecot would do is done here by hand: run the pipe program with the
message on stdin and the label as its argument. The model's score for the
message must move on spam and come back on forget.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway_harness import toml_dumps
from mailmoat.classify import Classifier, Model, load_from_store
from mailmoat.classify.testing import synthetic_corpus
from mailmoat.message import parse_message
from mailmoat.store.sqlite import SqliteStore
from serve_harness import MailmoatProcess
from servers import free_port, require_binary

pytestmark = pytest.mark.integration

DOC = Path(__file__).resolve().parents[2] / "docs" / "feedback.md"
MESSAGE = synthetic_corpus(2, seed=51)[1][1]
TOKEN = "a-test-token-0123456789abcdef"
MAX_SIZE = 50_000


def doc_script(name: str, directory: Path) -> Path:
    """The shell block after ``<!-- feedback-script: name -->``, as a file."""
    found = re.search(rf"<!-- feedback-script: {name} -->\n```sh\n(.*?)```", DOC.read_text(), re.S)
    assert found, f"docs/feedback.md has no {name} script"
    path = directory / f"mailmoat-learn-{name}"
    path.write_text(found.group(1))
    path.chmod(0o755)
    return path


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[tuple[MailmoatProcess, str]]:
    process = MailmoatProcess(tmp_path, "serve", free_port())
    web_port = free_port()
    process.config_path.write_text(
        toml_dumps(
            {
                "smtp": {
                    "listen": f"127.0.0.1:{process.port}",
                    "workers": 1,
                    "max_message_size": MAX_SIZE,
                },
                "web": {"listen": f"127.0.0.1:{web_port}", "learn_token": TOKEN},
                "relay": {"domains": ["example.org"]},
                "dns": {"nameserver": "127.0.0.1:9", "timeout": 0.2},
                "store": {"url": f"sqlite:///{tmp_path / 'store.db'}"},
                "stats": {"flush_interval": 0.2},
            }
        )
    )
    with process.start():
        yield process, f"http://127.0.0.1:{web_port}"


def stored_model(directory: Path) -> Model | None:
    async def read() -> Model | None:
        store = SqliteStore(str(directory / "store.db"))
        try:
            return await load_from_store(store)
        finally:
            await store.close()

    return asyncio.run(read())


def score(model: Model | None) -> float:
    return Classifier(model or Classifier.load().model).score(parse_message(MESSAGE))


def run(script: Path, label: str, env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [str(script), label],
        input=MESSAGE,
        capture_output=True,
        env={**os.environ, **env},
        timeout=120,
        check=False,
    )


def test_local_pipe_script(gateway: tuple[MailmoatProcess, str], tmp_path: Path) -> None:
    process, _url = gateway
    script = doc_script("local", tmp_path)
    env = {
        "MAILMOAT": str(Path(sys.executable).with_name("mailmoat")),
        "MAILMOAT_CONFIG": str(process.config_path),
    }
    before = score(None)
    spam = run(script, "spam", env)
    assert spam.returncode == 0, spam.stderr
    learned = stored_model(tmp_path)
    assert learned is not None and learned.version == 1 and score(learned) > before + 0.1
    forget = run(script, "forget", env)
    assert forget.returncode == 0, forget.stderr
    assert score(stored_model(tmp_path)) == pytest.approx(before, abs=0.01)
    wrong = run(script, "junk", env)
    assert wrong.returncode == 64 and b"usage" in wrong.stderr


def test_remote_pipe_script_and_api_answers(
    gateway: tuple[MailmoatProcess, str], tmp_path: Path
) -> None:
    require_binary("/usr/bin/curl", "curl")
    _process, url = gateway
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    script = doc_script("remote", tmp_path)
    env = {"MAILMOAT_URL": url, "MAILMOAT_TOKEN_FILE": str(token_file)}
    before = score(None)
    spam = run(script, "spam", env)
    assert spam.returncode == 0, spam.stderr
    assert b'"outcome":"learned"' in spam.stdout and b'"version":1' in spam.stdout
    assert score(stored_model(tmp_path)) > before + 0.1
    assert b'"outcome":"unchanged"' in run(script, "spam", env).stdout

    endpoint = f"{url}/api/learn"
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    refused = [
        httpx.post(f"{endpoint}/ham", content=MESSAGE),
        httpx.post(f"{endpoint}/ham", content=MESSAGE, headers={"Authorization": "Bearer nope"}),
        httpx.post(f"{endpoint}/ham", content=MESSAGE, headers={"Authorization": TOKEN}),
    ]
    assert [r.status_code for r in refused] == [401, 401, 401]
    assert all("token" in r.json()["error"] for r in refused)
    big = httpx.post(
        f"{endpoint}/ham", content=MESSAGE * (MAX_SIZE // len(MESSAGE) + 1), headers=bearer
    )
    assert big.status_code == 413 and "max_message_size" in big.json()["error"]
    chunks = iter([MESSAGE] * (MAX_SIZE // len(MESSAGE) + 1))  # no Content-Length
    assert httpx.post(f"{endpoint}/ham", content=chunks, headers=bearer).status_code == 413
    assert httpx.post(f"{endpoint}/ham", content=b"", headers=bearer).status_code == 400
    assert httpx.post(f"{endpoint}/maybe", content=MESSAGE, headers=bearer).status_code == 404
    model = stored_model(tmp_path)
    assert model is not None and model.version == 1  # none of these changed anything

    binary = httpx.post(f"{endpoint}/spam", content=bytes(range(256)) * 8, headers=bearer)
    assert binary.status_code == 200 and binary.json()["outcome"] == "learned"
    moved = httpx.post(f"{endpoint}/ham", content=MESSAGE, headers=bearer)
    assert moved.json() == {"ok": True, "outcome": "moved", "version": 3}
    assert score(stored_model(tmp_path)) < before
    forgot = run(script, "forget", env)
    assert b'"outcome":"forgotten"' in forgot.stdout
    assert score(stored_model(tmp_path)) == pytest.approx(before, abs=0.01)

    metrics = httpx.get(f"{url}/metrics").text
    counts = dict(re.findall(r'mailmoat_learn_total\{node="[^"]*",label="(\w+)"\} (\d+)', metrics))
    assert counts == {"spam": "3", "ham": "1", "forget": "1"}
