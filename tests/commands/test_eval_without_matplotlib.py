"""``mailmoat eval`` without the optional extra ``mailmoat[eval]`` (matplotlib):
the figures and results are complete, the missing plot is said plainly."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from commands.test_learn_eval import write_index
from mailmoat.cli import main


def test_eval_without_matplotlib_says_so_and_still_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import raises ImportError
    out = tmp_path / "out"
    status = main(["eval", str(write_index(tmp_path)), "--out", str(out), "--json"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert "matplotlib is not installed (pip install 'mailmoat[eval]')" in captured.err
    assert "Traceback" not in captured.err
    assert json.loads(captured.out.strip().splitlines()[-1])["n_spam"] > 0
    assert (out / "results.txt").read_text().count("\n") == 60
    assert not (out / "roc.png").exists()
    assert "ROC curve: not drawn (matplotlib missing)" in captured.out


def test_the_runtime_install_does_not_need_matplotlib() -> None:
    import tomllib

    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"]
    assert not any(d.startswith("matplotlib") for d in project["dependencies"])
    assert any(d.startswith("matplotlib==") for d in project["optional-dependencies"]["eval"])
    # the test run (make test, .ci/run: pip install -e '.[dev]') still gets it
    assert any(d.startswith("matplotlib==") for d in project["optional-dependencies"]["dev"])
