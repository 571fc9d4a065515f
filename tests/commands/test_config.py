"""``mailmoat config``: effective TOML, --check, and the reference in the docs."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from dataclasses import fields, is_dataclass
from pathlib import Path

from mailmoat.commands.config import reference, render
from mailmoat.config import Config, load_config

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_reference_names_every_key_and_docs_carry_it_verbatim() -> None:
    text = reference()
    defaults = Config()
    for section in fields(defaults):
        value = getattr(defaults, section.name)
        if is_dataclass(value):
            for item in fields(value):
                assert f"`{section.name}.{item.name}`" in text
    assert text in DOCS.read_text(), "regenerate: mailmoat config --reference"


def test_rendered_config_loads_back_identically(tmp_path: Path) -> None:
    source = tmp_path / "in.toml"
    source.write_text(
        '[relay]\ndomains = ["example.org"]\n[scores]\nX = 2\n[checks.helo]\ntimeout = 1\n'
    )
    config = load_config(source)
    rendered = tmp_path / "out.toml"
    rendered.write_text(render(config))
    tomllib.loads(rendered.read_text())
    again = load_config(rendered)
    assert again.relay == config.relay and again.scores == {"X": 2.0}
    assert again.check("helo").timeout == 1.0
    assert again.classifier == config.classifier and again.smtp == config.smtp


def test_secrets_are_hidden(tmp_path: Path) -> None:
    source = tmp_path / "web.toml"
    source.write_text('[web]\npassword_hash = "scrypt$abc$def"\nsecret_key = "s3cret"\n')
    shown = render(load_config(source))
    assert "s3cret" not in shown and "scrypt$abc" not in shown
    assert shown.count('"<hidden>"') == 2


def test_check_reports_errors_with_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[smtp]\nlisten = 25\n")
    done = subprocess.run(
        [sys.executable, "-m", "mailmoat", "config", "--config", str(bad), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "smtp.listen must be a string" in done.stderr
