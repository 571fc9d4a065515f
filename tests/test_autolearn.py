"""Autolearn in a running gateway: real SMTP on loopback, SPF answered by
NSD, the model file (classifier.model_path) learned into, the counters on
/metrics."""

from __future__ import annotations

import re
import smtplib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway_harness import GatewayThread
from mailmoat.checks.classifier import ClassifierCheck
from mailmoat.classify import Classifier, FeatureConfig, load_file, load_from_store
from mailmoat.classify.testing import synthetic_corpus
from mailmoat.message import parse_message
from mailmoat.runtime import Runtime
from mailmoat.web.auth import hash_password
from servers import Nsd

pytestmark = pytest.mark.integration

PASSWORD = "autolearn test password"
ZONES = {
    "pass.test": '@ IN TXT "v=spf1 ip4:127.0.0.0/8 -all"\n',
    "fail.test": '@ IN TXT "v=spf1 -all"\n',
}
RULES = """
[rules.TEST_PILLS]
body = '(?i)cheap pills'
score = 9.0
description = "test rule worth most of the spam threshold"
"""
HAM_WORDS = "meeting patch kernel review lunch report build release thanks agenda " * 4
# Words the test model never saw: it has no opinion, the rules decide.
NEUTRAL_WORDS = "zebra quartz violet harbour orbit saffron lantern meadow " * 4


class ServedGateway(GatewayThread):
    """A gateway wired like ``mailmoat serve``: statistics, dashboard, cluster, autolearn."""

    def __init__(self, tmp_path: Path, overrides: dict[str, dict[str, Any]]) -> None:
        super().__init__(tmp_path, overrides, door="serve")

    @property
    def runtime(self) -> Runtime:
        assert self.gateway is not None
        return self.gateway.runtime


def message(sender: str, subject: str, body: str) -> bytes:
    return (
        f"From: {sender}\r\nTo: user@example.org\r\nSubject: {subject}\r\n"
        f"Date: Sat, 28 Nov 2026 03:00:00 +0000\r\nMessage-ID: <{subject}@mail.test>\r\n"
        f"\r\n{body}\r\n"
    ).encode()


def send(gw: GatewayThread, helo: str, sender: str, data: bytes) -> int:
    with smtplib.SMTP("127.0.0.1", gw.port, timeout=30) as smtp:
        smtp.ehlo(helo)
        smtp.mail(sender)
        smtp.rcpt("user@example.org")
        try:
            return smtp.data(data)[0]
        except smtplib.SMTPDataError as exc:
            return exc.smtp_code


def metric(text: str, label: str) -> float:
    found = re.search(rf'^mailmoat_autolearn_total{{[^}}]*label="{label}"}} (\S+)$', text, re.M)
    assert found, text
    return float(found.group(1))


def trained_model(path: Path) -> None:
    classifier = Classifier.empty(FeatureConfig(hash_bits=16))
    for _ in range(3):
        for is_spam, raw in synthetic_corpus(90):
            classifier.learn(parse_message(raw), is_spam)
    classifier.save(path)


def test_gateway_autolearns_guarded_verdicts(
    nsd_factory: Callable[..., Nsd], tmp_path: Path
) -> None:
    nsd = nsd_factory(ZONES)
    model_path = tmp_path / "model.bin"
    trained_model(model_path)
    (tmp_path / "rules.toml").write_text(RULES)
    overrides = {
        "dns": {"nameserver": nsd.address, "timeout": 2},
        "dnsbl": {"sites": []},
        # The bare-IP HELO would put the first client in the greylisting band.
        "greylist": {"enabled": False},
        "urlbl": {"zones": []},
        "rules": {"files": [str(tmp_path / "rules.toml")]},
        "classifier": {"model_path": str(model_path), "autolearn_flush_interval": 3600},
        "stats": {"flush_interval": 3600},
        "web": {"listen": "127.0.0.1:0", "password_hash": hash_password(PASSWORD)},
    }
    rule_spam = message("x@fail.test", "quartz", f"{NEUTRAL_WORDS} cheap pills")
    ham = message("dev@pass.test", "thanks", HAM_WORDS)
    bayes_spam = synthetic_corpus(3, seed=5)[0][1].replace(b"\n", b"\r\n")
    with ServedGateway(tmp_path, overrides) as gw:
        learner = gw.runtime.learner
        assert learner is not None and gw.runtime.recorder is not None
        probe = parse_message(rule_spam)
        before = Classifier.load(model_path).score(probe)
        # Sender evidence: SPF fail (2.5) and a bare IP as HELO (2); content: the rule (9).
        assert send(gw, "192.0.2.7", "x@fail.test", rule_spam) in (250, 554)
        # SPF pass, nothing against it, the classifier leaning ham.
        assert send(gw, "mail.pass.test", "dev@pass.test", ham) == 250
        # Only the classifier says spam: never learned, as spam or as ham.
        send(gw, "mail.deals.example", "promo@deals.example", bayes_spam)
        assert [spam for _, spam in learner.pending] == [True, False]

        changed = gw.call(learner.flush())
        assert changed >= 1 and learner.pending == []
        # classifier.model_path is the model's one home: autolearn saved there.
        shared = load_file(model_path)
        assert shared.version == 1
        assert gw.call(load_from_store(gw.runtime.recorder.store)) is None
        assert Classifier(shared).score(probe) > before
        # The gateway's own classifier check now scores with the saved model.
        assert gw.gateway is not None
        live = gw.runtime.services.model.classifier
        check = next(c for c in gw.gateway.pipeline.checks if isinstance(c, ClassifierCheck))
        assert live is not None and check.classifier is live and live.model.version == 1

        gw.call(gw.runtime.recorder.flush())
        assert gw.runtime.dashboard is not None
        port = gw.runtime.dashboard.port
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", auth=("admin", PASSWORD)).text
        assert metric(text, "spam") == 1 and metric(text, "ham") == 1
