"""``mailmoat rules --stats`` and ``mailmoat config --check`` on rule files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mailmoat.rules.sources import PACKAGE_DIR
from servers import in_ci


def mailmoat(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mailmoat", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def config_with(tmp_path: Path, rules: str) -> str:
    path = tmp_path / "mailmoat.toml"
    path.write_text(f"[rules]\n{rules}\n")
    return str(path)


def test_stats_on_the_stock_rules_loads_2000_and_exits_0(tmp_path: Path) -> None:
    if not PACKAGE_DIR.is_dir():
        if in_ci():
            pytest.fail("SpamAssassin rules not installed")
        pytest.skip("SpamAssassin rules not installed")
    done = mailmoat("rules", "--stats", "--verbose")
    assert done.returncode == 0, done.stdout + done.stderr
    loaded = next(line for line in done.stdout.splitlines() if "of which SpamAssassin" in line)
    assert int(loaded.rsplit(":", 1)[1]) >= 2000
    assert "eval (Perl code)" in done.stdout and "per file:" in done.stdout
    assert "72_active.cf: loaded" in done.stdout


def test_admin_file_problems_fail_stats_and_config_check(tmp_path: Path) -> None:
    local = tmp_path / "local.cf"
    local.write_text("body GOOD /fine/\nmeta BROKEN (GOOD &&\nno_such_directive 1\n")
    config = config_with(tmp_path, f'sa_default = false\nsa_paths = ["{local}"]')
    done = mailmoat("rules", "--stats", "--config", config)
    assert done.returncode == 1
    assert f"{local}:2: rule BROKEN:" in done.stdout
    assert f"{local}:3: unknown directive 'no_such_directive'" in done.stdout
    checked = mailmoat("config", "--check", "--config", config)
    assert checked.returncode == 2
    assert f"{local}:2:" in checked.stderr and f"{local}:3:" in checked.stderr


def test_unreadable_file_fails_stats(tmp_path: Path) -> None:
    missing = tmp_path / "missing.cf"
    config = config_with(tmp_path, f'sa_default = false\nsa_paths = ["{missing}"]')
    done = mailmoat("rules", "--stats", "--config", config)
    assert done.returncode == 1
    assert f"{missing}: no such file or directory" in done.stdout


def test_clean_admin_files_pass(tmp_path: Path) -> None:
    local = tmp_path / "local.cf"
    local.write_text("body GOOD /fine/\nscore GOOD 0.5\n")
    config = config_with(tmp_path, f'sa_default = false\nsa_paths = ["{local}"]')
    done = mailmoat("rules", "--stats", "--config", config)
    assert done.returncode == 0, done.stdout
    assert "rules loaded: 21" in done.stdout  # 20 bundled + GOOD
    assert mailmoat("config", "--check", "--config", config).returncode == 0


def test_stats_counts_the_helpers_nothing_reads(tmp_path: Path) -> None:
    local = tmp_path / "local.cf"
    local.write_text(
        "body __READ /fine/\nbody __UNREAD /never read/\nbody __ALSO_READ /also/\n"
        "meta __INNER __ALSO_READ\nmeta GOOD __READ && __INNER\nscore GOOD 0.5\n"
    )
    config = config_with(tmp_path, f'sa_default = false\nsa_paths = ["{local}"]')
    done = mailmoat("rules", "--stats", "--config", config)
    assert done.returncode == 0, done.stdout
    assert "rules loaded: 25" in done.stdout  # 20 bundled + 5 (the unread helper too)
    assert "not evaluated, as nothing reads their hits (unused helpers): 1" in done.stdout
