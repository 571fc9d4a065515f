"""``[process] user``: started as root, ``mailmoat serve`` binds port, drops to
the user in the supervisor and its workers, and still delivers; a user that
does not exist stops the start with a line naming it."""

from __future__ import annotations

import os
import pwd
import shutil
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from gateway_harness import toml_dumps
from log_guard import unparsed_transaction_lines
from mailmoat.cli import main
from servers import SmtpSink, _missing, free_port, require_root, tcp_listening

SRC = Path(__file__).resolve().parents[1] / "src"


def _reachable_by_others(path: Path) -> bool:
    """Whether every directory down to ``path`` lets other users through."""
    return all(os.stat(p).st_mode & 0o001 for p in [path, *path.parents] if p.exists())


def interpreter_for_others() -> tuple[str, dict[str, str]]:
    """A Python a dropped process can go on importing from: this one when its
    files are open to other users, else Debian's python3 of the same version
    with this environment's packages (on machines where the running Python
    lives in root's home)."""
    if _reachable_by_others(Path(sys.base_prefix) / "lib"):
        return sys.executable, {}
    system = shutil.which("python3", path="/usr/bin")
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    site = Path(sys.prefix) / "lib" / f"python{version}" / "site-packages"
    if system:
        probe = subprocess.run(
            [system, "-c", "import sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}')"],
            capture_output=True,
            text=True,
        )
        if probe.stdout.strip() == version and _reachable_by_others(site):
            return system, {"PYTHONPATH": f"{site}:{SRC}"}
    _missing(f"no Python {version} readable by other users (Debian package python3)")
    raise AssertionError("unreachable")  # pragma: no cover


def _status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {key: value.strip() for key, _, value in (line.partition(":") for line in lines)}


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if _status(int(entry.name)).get("PPid") == str(pid):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.fixture
def state_dir() -> Iterator[Path]:
    """A directory others can enter (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="mailmoat-process-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _start_as_nobody(
    state_dir: Path, command: str, settings: dict[str, dict[str, Any]], listeners: int = 1
) -> tuple[subprocess.Popen[bytes], Path]:
    """Start ``mailmoat COMMAND`` as root with ``settings`` plus
    ``[process] user = "nobody"``; return once ``listeners`` listeners
    logged "listening on" (the process and its log file)."""
    python, extra_env = interpreter_for_others()
    config = state_dir / "mailmoat.toml"
    config.write_text(toml_dumps({**settings, "process": {"user": "nobody"}}))
    config.chmod(0o644)
    log_path = state_dir / f"{command}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [python, "-m", "mailmoat", command, "--config", str(config)],
            cwd=state_dir,
            env={**os.environ, **extra_env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while log_path.read_text(errors="replace").count("listening on") < listeners:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.terminate()
            proc.wait(30)
            raise AssertionError(log_path.read_text(errors="replace"))
        time.sleep(0.1)
    return proc, log_path


@pytest.mark.parametrize("workers", [2, 1])
def test_started_as_root_the_workers_run_as_nobody_and_deliver(
    smtp_sink: SmtpSink, state_dir: Path, workers: int
) -> None:
    require_root("dropping privileges")
    nobody = pwd.getpwnam("nobody")
    port = free_port()
    settings: dict[str, dict[str, Any]] = {
        "smtp": {"listen": f"127.0.0.1:{port}", "workers": workers},
        "relay": {"upstream": smtp_sink.address, "domains": ["example.test"]},
        "web": {"enabled": False},
        "pregreet": {"delay": 0},
        "rules": {"sa_default": False},
    }
    proc, log_path = _start_as_nobody(state_dir, "serve", settings, listeners=workers)
    try:
        assert tcp_listening(port)
        children = _children(proc.pid)
        assert len(children) == (workers if workers > 1 else 0), children
        for pid in (proc.pid, *children):
            status = _status(pid)
            # real, effective, saved and file-system ids
            assert status["Uid"].split() == [str(nobody.pw_uid)] * 4, (pid, status["Uid"])
            assert status["Gid"].split() == [str(nobody.pw_gid)] * 4, (pid, status["Gid"])
            assert "0" not in status["Groups"].split()
            assert status["CapEff"] == "0000000000000000"

        message = EmailMessage()
        message["From"] = "alice@sender.test"
        message["To"] = "bob@example.test"
        message["Subject"] = "through a dropped gateway"
        message["Message-ID"] = "<dropped.1@sender.test>"
        message["Date"] = "Mon, 07 Dec 2026 19:00:00 +0000"
        message.set_content("Hello Bob,\n\nthe gateway serves as nobody.\n")
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            client.ehlo("mail.sender.test")
            refused = client.send_message(message)
        assert refused == {}
        [delivered] = smtp_sink.wait_messages(1)
        assert delivered.rcpt_to == ("bob@example.test",)
        assert b"through a dropped gateway" in delivered.data
        # The state it writes belongs to nobody.
        assert (state_dir / "var").stat().st_uid == nobody.pw_uid
        assert (state_dir / "var" / "mailmoat.db").stat().st_uid == nobody.pw_uid
    finally:
        proc.terminate()
        proc.wait(30)
    output = log_path.read_text(errors="replace")
    assert proc.returncode == 0, output
    assert "running as user nobody" in output
    assert "message_id=<dropped.1@sender.test>" in output
    assert not unparsed_transaction_lines(output)
    assert "Traceback" not in output


def test_a_user_that_does_not_exist_is_a_start_up_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "mailmoat.toml"
    config.write_text(
        toml_dumps(
            {
                "smtp": {"listen": f"127.0.0.1:{free_port()}"},
                "process": {"user": "no-such-user-mailmoat", "group": "no-such-group-mailmoat"},
            }
        )
    )
    assert main(["serve", "--config", str(config)]) == 2
    errors = capsys.readouterr().err.splitlines()
    assert (
        f"mailmoat: configuration error: {config}: process.user: no such user "
        in (errors[0].rpartition("'no-such-user-mailmoat'")[0])
    )
    assert any("process.group: no such group 'no-such-group-mailmoat'" in e for e in errors)


def test_the_policy_front_started_as_root_answers_as_nobody(state_dir: Path) -> None:
    require_root("dropping privileges")
    nobody = pwd.getpwnam("nobody")
    port = free_port()
    settings: dict[str, dict[str, Any]] = {
        "policy": {"listen": f"127.0.0.1:{port}"},
        "relay": {"domains": ["example.test"]},
        "rules": {"sa_default": False},
    }
    proc, log_path = _start_as_nobody(state_dir, "policy", settings)
    try:
        assert _status(proc.pid)["Uid"].split() == [str(nobody.pw_uid)] * 4
        request = (
            "request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=192.0.2.1\n"
            "client_name=mail.sender.test\nhelo_name=mail.sender.test\n"
            "sender=a@sender.test\nrecipient=b@example.test\nqueue_id=3F1A2B4C5D\n\n"
        )
        with socket.create_connection(("127.0.0.1", port), timeout=30) as client:
            client.sendall(request.encode())
            answer = client.recv(4096)
        assert answer.startswith(b"action=") and answer.endswith(b"\n\n")
        assert (state_dir / "var" / "mailmoat.db").stat().st_uid == nobody.pw_uid
    finally:
        proc.terminate()
        proc.wait(30)
    output = log_path.read_text(errors="replace")
    assert "running as user nobody" in output and "Traceback" not in output
    assert not unparsed_transaction_lines(output)
