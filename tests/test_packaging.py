"""packaging/: the systemd units pass ``systemd-analyze verify`` and run
nothing as root, sandboxed; the Containerfile runs as an unprivileged user."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from servers import require_binary

ROOT = Path(__file__).resolve().parents[1]
UNITS = ROOT / "packaging" / "systemd"
NAMES = ("mailmoat.service", "mailmoat-milter.service", "mailmoat-policy.service")
INSTALLED_AT = "/usr/local/bin/mailmoat"


def _settings(unit: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in unit.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def _installed_copies(tmp_path: Path, edit: str = "") -> list[Path]:
    """The units with ExecStart pointing at this environment's ``mailmoat``
    (verify checks the program exists), optionally with ``edit`` appended
    to the [Service] section."""
    program = Path(sys.executable).with_name("mailmoat")
    assert program.exists(), program
    copies = []
    for name in NAMES:
        text = (UNITS / name).read_text().replace(INSTALLED_AT, str(program))
        if edit:
            text = text.replace("[Install]", f"{edit}\n\n[Install]")
        copy = tmp_path / name
        copy.write_text(text)
        copies.append(copy)
    return copies


def _verify(units: list[Path]) -> subprocess.CompletedProcess[str]:
    analyze = require_binary("systemd-analyze", "systemd")
    return subprocess.run(
        [analyze, "verify", *map(str, units)], capture_output=True, text=True, timeout=120
    )


def test_units_pass_systemd_analyze_verify_without_a_warning(tmp_path: Path) -> None:
    result = _verify(_installed_copies(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout + result.stderr == ""


def test_verify_would_report_a_broken_unit(tmp_path: Path) -> None:
    result = _verify(_installed_copies(tmp_path, "ProtectSystem=bogus\nFrobnicate=yes"))
    assert "Frobnicate" in result.stderr and "bogus" in result.stderr


@pytest.mark.parametrize("name", NAMES)
def test_units_run_unprivileged_and_sandboxed(name: str) -> None:
    unit = _settings(UNITS / name)
    assert unit["User"] == ["mailmoat"] and unit["Group"] == ["mailmoat"]
    assert unit["NoNewPrivileges"] == ["yes"]
    assert unit["ProtectSystem"] == ["strict"]
    assert unit["ReadWritePaths"] == [f"/var/lib/{unit['StateDirectory'][0]}"]
    assert unit["WorkingDirectory"] == unit["ReadWritePaths"]
    assert "MAILMOAT_CACHE=/var/cache/mailmoat" in unit["Environment"][0]
    if name == "mailmoat.service":  # port 25: that one capability, no other
        assert unit["AmbientCapabilities"] == ["CAP_NET_BIND_SERVICE"]
        assert unit["CapabilityBoundingSet"] == ["CAP_NET_BIND_SERVICE"]
    else:
        assert "AmbientCapabilities" not in unit and unit["CapabilityBoundingSet"] == [""]
    assert unit["ExecStart"][0].startswith(f"{INSTALLED_AT} {name[9:-8] or 'serve'} --config")


def test_systemd_rates_the_gateway_unit_well_sandboxed(tmp_path: Path) -> None:
    analyze = require_binary("systemd-analyze", "systemd")
    unit = _installed_copies(tmp_path)[0]
    result = subprocess.run(
        [analyze, "security", "--offline=yes", str(unit)], capture_output=True, text=True
    )
    level = re.search(r"Overall exposure level for \S+: (\d+\.\d)", result.stdout)
    assert level is not None, result.stdout + result.stderr
    assert float(level[1]) <= 2.5, result.stdout  # "OK" (10 = fully exposed)


def test_containerfile_runs_unprivileged_with_the_lean_install() -> None:
    text = (ROOT / "Containerfile").read_text()
    assert re.search(r"^USER mailmoat$", text, re.M)
    (install,) = [line for line in text.splitlines() if "pip install" in line]
    assert "[" not in install  # no extras: neither dev tools nor matplotlib
    assert re.search(r"^EXPOSE 25\b", text, re.M)
    assert 'ENTRYPOINT ["mailmoat"]' in text
