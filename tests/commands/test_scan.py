"""``mailmoat scan``: text and JSON output per file, errors on stderr."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

GOOD = (
    b"From nobody Sat Nov 28 10:00:00 2026\n"
    b"From: a@sender.test\nTo: b@example.org\nSubject: hello\n"
    b"Date: Sat, 28 Nov 2026 10:00:00 +0000\nMessage-ID: <x@sender.test>\n\nhi\n"
)
BARE = b"Subject: no from, no date\n\nhi\n"


def scan(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "scan.toml"
    config.write_text(
        f'[store]\nurl = "sqlite:///{tmp_path}/store.db"\n'
        '[dns]\nnameserver = "127.0.0.1:9"\ntimeout = 0.2\n'
    )
    return subprocess.run(
        [sys.executable, "-m", "mailmoat", "scan", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )


def test_json_lines(tmp_path: Path) -> None:
    (tmp_path / "good.eml").write_bytes(GOOD)
    (tmp_path / "bare.eml").write_bytes(BARE)
    done = scan(tmp_path, "--json", str(tmp_path / "good.eml"), str(tmp_path / "bare.eml"))
    assert done.returncode == 0, done.stderr
    good, bare = (json.loads(line) for line in done.stdout.splitlines())
    assert good["file"].endswith("good.eml") and bare["file"].endswith("bare.eml")
    assert {"HDR_MISSING_FROM", "HDR_MISSING_DATE"} <= set(bare["symbols"])
    assert "HDR_MISSING_FROM" not in good["symbols"]
    assert bare["score"] == round(sum(bare["symbols"].values()), 2)
    assert good["action"] in ("accept", "add_header", "quarantine", "soft_reject", "reject")


def test_text_output_and_missing_file(tmp_path: Path) -> None:
    (tmp_path / "bare.eml").write_bytes(BARE)
    done = scan(tmp_path, str(tmp_path / "bare.eml"), str(tmp_path / "absent.eml"))
    assert done.returncode == 1
    assert "HDR_MISSING_FROM" in done.stdout and "bare.eml:" in done.stdout
    assert "absent.eml" in done.stderr
