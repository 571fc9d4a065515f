"""scripts/system-packages: the one list of Debian packages `make test` and CI install."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "system-packages"


def _run(*args: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if path is not None:
        env["PATH"] = path
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=60
    )


def _fake_bin(tmp_path: Path, uid: int) -> str:
    """A PATH where dpkg-query knows no package and `id -u` prints ``uid``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "dpkg-query").write_text("#!/bin/sh\nexit 1\n")
    (bin_dir / "id").write_text(f"#!/bin/sh\necho {uid}\n")
    (bin_dir / "apt-get").write_text("#!/bin/sh\necho apt-get must not run >&2\nexit 99\n")
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    return f"{bin_dir}:/usr/bin:/bin"


def test_ci_and_make_use_the_one_list() -> None:
    assert "scripts/system-packages --install" in (ROOT / ".ci" / "run").read_text()
    assert "scripts/system-packages --install" in (ROOT / "Makefile").read_text()
    listed = _run("--list").stdout.split()
    for needed in ("postfix", "rbldnsd", "redis-server", "chromium", "spamassassin"):
        assert needed in listed


def test_missing_packages_without_root_print_the_command_and_fail(tmp_path: Path) -> None:
    done = _run("--install", path=_fake_bin(tmp_path, uid=1000))
    assert done.returncode == 1
    assert "apt-get must not run" not in done.stderr
    command = next(line for line in done.stderr.splitlines() if "apt-get install" in line)
    for package in _run("--list").stdout.split():
        assert package in command.split()


def test_check_reports_missing_packages(tmp_path: Path) -> None:
    done = _run("--check", path=_fake_bin(tmp_path, uid=0))
    assert done.returncode == 1
    assert "missing system packages: postfix" in done.stderr


def test_unknown_option_is_a_usage_error() -> None:
    assert _run("--frobnicate").returncode == 2
