"""Learning a delivered message from the history: ``mailmoat serve`` keeps a
private copy of accepted mail (``quarantine.keep_accepted_days``) and its
dashboard page learns, moves and forgets it into the gateway's model file."""

from __future__ import annotations

import re
import smtplib
import stat
import time
from pathlib import Path

import httpx
import pytest

from gateway_harness import toml_dumps
from mailmoat.classify import Classifier, FeatureConfig, load_file
from mailmoat.classify.testing import synthetic_corpus
from mailmoat.message import parse_message
from serve_harness import MailmoatProcess
from servers import free_port

pytestmark = pytest.mark.integration

MESSAGE = synthetic_corpus(2, seed=61)[1][1]


def csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found, html
    return found.group(1)


def test_learn_a_delivered_message_from_its_page(tmp_path: Path) -> None:
    model = tmp_path / "model.bin"
    Classifier.empty(FeatureConfig(hash_bits=16)).save(model)
    process = MailmoatProcess(tmp_path, "serve", free_port())
    web_port = free_port()
    process.config_path.write_text(
        toml_dumps(
            {
                "smtp": {"listen": f"127.0.0.1:{process.port}", "workers": 1},
                "web": {"listen": f"127.0.0.1:{web_port}"},
                "relay": {"domains": ["example.org"]},
                "dns": {"nameserver": "127.0.0.1:9", "timeout": 0.2},
                "delivery": {"maildir": str(tmp_path / "maildir")},
                "quarantine": {"directory": str(tmp_path / "q"), "keep_accepted_days": 1},
                "store": {"url": f"sqlite:///{tmp_path / 'store.db'}"},
                "classifier": {"model_path": str(model), "autolearn": False},
                "stats": {"flush_interval": 0.2},
            }
        )
    )
    with process.start():
        with smtplib.SMTP("127.0.0.1", process.port, timeout=30) as client:
            client.sendmail("dev@lists.example.org", ["bob@example.org"], MESSAGE)
        [delivered] = (tmp_path / "maildir" / "new").iterdir()
        found = re.search(rb" id ([A-Za-z0-9]+)", delivered.read_bytes())
        assert found
        queue_id = found.group(1).decode()
        kept = tmp_path / "q" / "accepted" / queue_id
        deadline = time.monotonic() + 15
        while not kept.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert kept.exists(), process.output()
        assert stat.S_IMODE(kept.stat().st_mode) == 0o600
        assert stat.S_IMODE(kept.parent.stat().st_mode) == 0o700

        probe = parse_message(MESSAGE)
        before = Classifier.load(model).score(probe)
        with httpx.Client(base_url=f"http://127.0.0.1:{web_port}", follow_redirects=True) as web:
            page = web.get(f"/message/{queue_id}")
            assert "Teach the classifier" in page.text
            token = csrf(page.text)
            learned = web.post(f"/message/{queue_id}/learn-spam", data={"csrf": token})
            assert f"{queue_id}: learned" in learned.text  # followed to the page
            assert load_file(model).version == 1
            assert Classifier.load(model).score(probe) > before + 0.1
            forgot = web.post(f"/message/{queue_id}/forget", data={"csrf": token})
            assert f"{queue_id}: forgotten" in forgot.text
            assert Classifier.load(model).score(probe) == pytest.approx(before, abs=0.01)
            assert web.post(f"/message/{queue_id}/learn-ham", data={}).status_code == 403
            unknown = web.post("/message/NOSUCHID/learn-spam", data={"csrf": token})
            assert "is not kept" in unknown.text
            assert load_file(model).version == 2
        assert f"history: learn-spam queue_id={queue_id}: learned" in process.output()
