"""``mailmoat symbols``: every symbol with its check, scores and description;
docs/symbols.md is its reference; the dashboard explains with the same text."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mailmoat import cli
from mailmoat.checks.catalog import description, entries, rule_entries
from mailmoat.checks.registry import all_specs
from mailmoat.commands.symbols import reference
from mailmoat.config import Config, RulesConfig
from mailmoat.web.explain import explain_symbol

DOCS = Path(__file__).resolve().parents[2] / "docs" / "symbols.md"
SA_RULES = Path("/usr/share/spamassassin")


def _symbols_json(*args: str) -> list[dict[str, object]]:
    done = subprocess.run(
        [sys.executable, "-m", "mailmoat", "symbols", "--json", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    listed: list[dict[str, object]] = json.loads(done.stdout)
    return listed


def test_json_lists_every_declared_symbol_with_effective_scores(tmp_path: Path) -> None:
    config = tmp_path / "mailmoat.toml"
    config.write_text("[scores]\nHELO_OURS = 9\nBODY_EMPTY = -1.5\nDNSBL_ZEN = 5\n")
    listed = _symbols_json("--config", str(config))
    by_name = {str(row["name"]): row for row in listed}
    assert len(by_name) == len(listed), "a symbol is listed twice"
    for spec in all_specs():
        for symbol in spec.symbols:
            row = by_name[symbol.name]
            assert row["check"] == spec.name and row["group"] == symbol.group
            assert row["default"] == symbol.score and row["kind"] == "symbol"
            assert row["description"] == symbol.description
        for family in spec.families:
            assert by_name[family.pattern]["kind"] == "family"
    assert by_name["HELO_OURS"]["default"] == 4.0 and by_name["HELO_OURS"]["effective"] == 9.0
    assert by_name["BODY_EMPTY"]["effective"] == -1.5
    assert by_name["HELO_BARE_IP"]["effective"] == by_name["HELO_BARE_IP"]["default"] == 2.0
    assert by_name["BAYES_SPAM"]["default"] is None
    zen = by_name["DNSBL_ZEN"]
    assert (zen["check"], zen["kind"], zen["default"], zen["effective"]) == (
        "dnsbl",
        "family",
        None,
        5.0,
    )
    for row in listed:
        assert str(row["description"]).strip(), f"{row['name']} has no description"


def test_bundled_rules_are_listed_with_a_description() -> None:
    bundled = rule_entries(RulesConfig(bundled=True, sa_default=False))
    assert len(bundled) >= 10
    listed = {str(row["name"]): row for row in _symbols_json()}
    for rule in bundled:
        assert rule.description.strip()
        assert listed[rule.name]["check"] == "rules"
        assert listed[rule.name]["description"] == rule.description
    assert not any(name.startswith("__") for name in listed)


@pytest.mark.skipif(not SA_RULES.is_dir(), reason="SpamAssassin's rules are not installed")
def test_spamassassin_rules_are_listed_each_with_a_description() -> None:
    rules = [e for e in entries(Config()) if e.group == "spamassassin"]
    assert len(rules) > 100
    assert all(rule.description.strip() for rule in rules)
    undescribed = [r for r in rules if r.description.endswith("(no description)")]
    for rule in undescribed:
        assert rule.description == f"SpamAssassin rule {rule.name} (no description)"


def test_docs_carry_the_reference_verbatim() -> None:
    text = reference()
    for spec in all_specs():
        for symbol in spec.symbols:
            assert f"`{symbol.name}`" in text
    assert text in DOCS.read_text(), "regenerate: mailmoat symbols --reference"


def test_the_dashboard_explains_with_the_specs_and_rules_text() -> None:
    config = Config()
    for entry in entries(config):
        name = entry.name
        if entry.kind == "family":  # a concrete name of the family
            name = name.split("<")[0] + "EXAMPLE"
        assert explain_symbol(name, config) == entry.description, name
        assert description(name, config) == entry.description
    assert explain_symbol("DNSBL_ZEN_SPAMHAUS", config).startswith("The client address is listed")
    assert explain_symbol("NO_SUCH_SYMBOL_AT_ALL", config) == ""


def _check(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = cli.main(["config", "--config", str(path), "--check"])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("[scores]\nNO_SUCH_SYMBOL = 1\n", "scores.NO_SUCH_SYMBOL: unknown symbol"),
        ("[scores]\nHELO_BAREIP = 9\n", "scores.HELO_BAREIP: unknown symbol"),
        ("[checks.no_such_check]\ntimeout = 1\n", "checks.no_such_check: no such check"),
        ("[checks.dnsbll]\nenabled = false\n", "checks.dnsbll: no such check"),
        ('[checks.helo]\ntimeout = "soon"\n', "checks.helo.timeout must be a number"),
    ],
)
def test_config_check_refuses_unknown_symbols_and_checks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, named: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    code, output = _check(path, capsys)
    assert code == 2 and named in output, output


def test_config_check_takes_declared_family_runner_and_rule_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundled_rule = rule_entries(RulesConfig(bundled=True, sa_default=False))[0].name
    path = tmp_path / "good.toml"
    path.write_text(
        "[scores]\nHELO_OURS = 1\nDNSBL_ZEN = 3\nURIBL_DBL_SPAM = 4\nCHECK_SPF_FAILED = 1\n"
        f"BAYES_SPAM = 2\nPREGREET = 3\n{bundled_rule} = 0.5\n[checks.helo]\ntimeout = 2\n"
    )
    code, output = _check(path, capsys)
    assert code == 0 and output.startswith("ok"), output
