"""Launchers for real servers on loopback, for integration tests.

Each launcher starts a real daemon (Postfix's smtp-sink, a private Postfix instance, rbldnsd,
NSD, redis-server) on 127.0.0.1 and a free port, writes its configuration into a private
temporary directory, and always kills what it started on ``stop()`` (also used by
``__exit__``).  Missing binaries skip the test locally and fail it when ``CI=true``.

Only loopback addresses are ever used.  Example::

    with SmtpSink() as sink:
        smtplib.SMTP(sink.host, sink.port).sendmail("a@x.test", ["b@y.test"], b"...")
        [msg] = sink.wait_messages(1)
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

import pytest

LOOPBACK = "127.0.0.1"

#: Debian package providing each binary, for the skip/fail message.
_PACKAGES: dict[str, str] = {
    "smtp-sink": "postfix",
    "postfix": "postfix",
    "postconf": "postfix",
    "postmap": "postfix",
    "rbldnsd": "rbldnsd",
    "nsd": "nsd",
    "nsd-checkconf": "nsd",
    "redis-server": "redis-server",
    "swaks": "swaks",
}


class ServerError(RuntimeError):
    """A server failed to start, or did not reach the expected state in time."""


# --------------------------------------------------------------------------------------------
# small helpers


def in_ci() -> bool:
    """True when running in CI (``CI=true``): missing prerequisites are failures there."""
    return os.environ.get("CI", "").lower() == "true"


def _missing(message: str) -> None:
    if in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def require_binary(path_or_name: str, package: str | None = None) -> str:
    """Return the path of an executable; skip the test (fail it under ``CI=true``) if absent."""
    name = os.path.basename(path_or_name)
    if os.sep in path_or_name:
        found: str | None = path_or_name if os.access(path_or_name, os.X_OK) else None
    else:
        extra = os.pathsep.join(["/usr/sbin", "/sbin", "/usr/lib/postfix/sbin"])
        found = shutil.which(name, path=os.environ.get("PATH", "") + os.pathsep + extra)
    if found is None:
        pkg = package or _PACKAGES.get(name, name)
        _missing(f"{name} not installed (Debian package {pkg})")
        raise AssertionError("unreachable")  # pragma: no cover - skip/fail raise
    return found


def require_root(what: str) -> None:
    """Skip (fail in CI) when not running as root; e.g. Postfix's master needs root."""
    if os.geteuid() != 0:
        _missing(f"{what} needs root privileges")


def free_port(kind: Literal["tcp", "udp", "both"] = "tcp") -> int:
    """Return a port on 127.0.0.1 that is currently free for TCP, UDP or both."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((LOOPBACK, 0))
            port = int(tcp.getsockname()[1])
            if kind == "tcp":
                return port
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                    udp.bind((LOOPBACK, port))
            except OSError:
                continue
            return port
    raise ServerError("no free port found")


def wait_for_port(host: str, port: int, timeout: float = 10.0) -> None:
    """Wait until a TCP connect to host:port succeeds; raise TimeoutError otherwise."""
    deadline = time.monotonic() + timeout
    last: OSError | None = None
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError as exc:
            last = exc
            time.sleep(0.05)
    raise TimeoutError(f"{host}:{port} not accepting connections after {timeout}s ({last})")


def wait_for_dns(port: int, qname: str, host: str = LOOPBACK, timeout: float = 10.0) -> None:
    """Wait until a DNS server on host:port (UDP) answers any query for qname."""
    import dns.exception
    import dns.message
    import dns.query

    deadline = time.monotonic() + timeout
    query = dns.message.make_query(qname, "SOA")
    while time.monotonic() < deadline:
        try:
            dns.query.udp(query, host, port=port, timeout=0.3)
            return
        except (dns.exception.Timeout, OSError):
            time.sleep(0.05)
    raise TimeoutError(f"DNS server {host}:{port} not answering after {timeout}s")


def tcp_listening(port: int, host: str = LOOPBACK) -> bool:
    """True if something listens on host:port (IPv4 TCP), checked without connecting."""
    want = f"{socket.htonl(int.from_bytes(socket.inet_aton(host), 'big')):08X}:{port:04X}"
    with contextlib.suppress(OSError), open("/proc/net/tcp") as table:
        for line in table.read().splitlines()[1:]:
            fields = line.split()
            if fields[1] in (want, f"00000000:{port:04X}") and fields[3] == "0A":
                return True
    return False


def _wait_until(predicate: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def kill_pids(pids: Iterable[int], grace: float = 3.0) -> None:
    """SIGTERM the pids, wait up to ``grace`` seconds, then SIGKILL what is left."""
    pending = [p for p in pids if p > 1 and p != os.getpid()]
    for pid in pending:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while pending and time.monotonic() < deadline:
        pending = [p for p in pending if _pid_alive(p)]
        if pending:
            time.sleep(0.05)
    for pid in pending:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def pids_with_env(name: str, value: str) -> list[int]:
    """Pids of processes whose environment has ``name=value`` (to find a daemon's children)."""
    needle = f"{name}={value}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            env = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if needle in env:
            found.append(int(entry.name))
    return found


def group_members(pgid: int, include_zombies: bool = False) -> list[int]:
    """Pids of the processes in process group ``pgid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(stat[2]) == pgid and (include_zombies or stat[0] != "Z"):
                    found.append(int(entry.name))
    return found


_RUNNING: set[Server] = set()


@atexit.register
def _kill_all_running() -> None:  # safety net if a test forgot to stop a server
    for server in list(_RUNNING):
        with contextlib.suppress(Exception):
            server.stop()


# --------------------------------------------------------------------------------------------
# base class


class Server:
    """Base: owns a private work directory and a child process started in its own session."""

    name = "server"

    def __init__(self, workdir: Path | None = None, keep_workdir: bool = False) -> None:
        # workdir: default is a fresh 0755 directory under /tmp, removed by stop(). A given
        # workdir must be traversable by unprivileged users (daemons drop privileges).
        self._own_workdir = workdir is None
        self._keep_workdir = keep_workdir
        self._workdir_arg = workdir
        self.workdir = Path("/nonexistent")
        self.proc: subprocess.Popen[bytes] | None = None
        self.host = LOOPBACK
        self.port = 0

    # lifecycle ------------------------------------------------------------------------------
    def _make_workdir(self) -> None:
        if self._workdir_arg is None:
            # Short, world-traversable path under /tmp: daemons drop privileges and Postfix
            # has unix socket paths (108 byte limit) below it. pytest's tmp_path is 0700.
            self.workdir = Path(tempfile.mkdtemp(prefix=f"mm-{self.name}-"))
        else:
            self.workdir = self._workdir_arg
            self.workdir.mkdir(parents=True, exist_ok=True)
        self.workdir.chmod(0o755)

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        """Stop the server (by PID, escalating to SIGKILL) and remove the work directory."""
        self._kill()
        _RUNNING.discard(self)
        if self._own_workdir and not self._keep_workdir and self.workdir.is_dir():
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _kill(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        # SIGTERM the leader, give it and its children (nsd forks) a moment to exit, then
        # SIGKILL whatever is left in the process group.  Orphaned children that already
        # exited may show as <defunct> until PID 1 reaps them.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGCONT)
            proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=3)
        with contextlib.suppress(TimeoutError):
            _wait_until(lambda: not group_members(proc.pid), 2.0, "process group to exit")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=3)

    def _spawn(self, argv: Sequence[str], log_name: str = "output.log") -> subprocess.Popen[bytes]:
        log = open(self.workdir / log_name, "ab")  # noqa: SIM115 - handed to the child
        try:
            self.proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                start_new_session=True,
            )
        finally:
            log.close()
        _RUNNING.add(self)
        return self.proc

    def _check_alive(self, log_name: str = "output.log") -> None:
        if self.proc is not None and self.proc.poll() is not None:
            output = self.output(log_name)
            raise ServerError(f"{self.name} exited with {self.proc.returncode}:\n{output}")

    def output(self, log_name: str = "output.log") -> str:
        """The child's captured stdout/stderr."""
        path = self.workdir / log_name
        return path.read_text(errors="replace") if path.exists() else ""

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def address(self) -> str:
        """``host:port``."""
        return f"{self.host}:{self.port}"

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.stop()  # a failed start must not leave processes or directories behind
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.address} pid={self.pid}>"


# --------------------------------------------------------------------------------------------
# smtp-sink


@dataclass(frozen=True)
class SinkMessage:
    """One mail transaction captured by smtp-sink."""

    mail_from: str  # envelope sender without <>; "" for the null sender
    rcpt_to: tuple[str, ...]  # envelope recipients without <>
    data: bytes  # DATA content, dot-unstuffed, CRLF line ends, ends with CRLF
    helo: str | None
    client_addr: str
    mail_args: str  # full MAIL FROM arguments, e.g. "<a@b> SIZE=12 BODY=8BITMIME"
    rcpt_args: tuple[str, ...]  # full RCPT TO arguments
    path: Path


def _address(args: str) -> str:
    token = args.split()[0] if args.split() else ""
    return token[1:-1] if token.startswith("<") and token.endswith(">") else token


def parse_sink_dump(raw: bytes, path: Path = Path("-")) -> SinkMessage:
    """Parse one smtp-sink ``-d`` dump file (see ``man smtp-sink``, DUMP FILE FORMAT)."""
    lines = raw.split(b"\n")
    meta: dict[str, list[str]] = {}
    i = 0
    while i < len(lines):
        line = lines[i].decode("utf-8", "surrogateescape")
        key, _, value = line.partition(": ")
        if key == "Received":
            i += 3  # "Received: from ...", "\tby ...;", "\t<date>"
            break
        meta.setdefault(key, []).append(value)
        i += 1
    else:
        raise ValueError(f"{path}: no smtp-sink Received header (incomplete dump?)")
    body = b"\n".join(lines[i:])
    if not body.endswith(b"\n\n"):
        raise ValueError(f"{path}: dump not terminated (transaction still in progress?)")
    body = body[:-1]  # smtp-sink appends one empty line
    mail_args = meta.get("X-Mail-Args", [""])[0]
    rcpt_args = tuple(meta.get("X-Rcpt-Args", []))
    return SinkMessage(
        mail_from=_address(mail_args),
        rcpt_to=tuple(_address(a) for a in rcpt_args),
        data=body.replace(b"\n", b"\r\n"),
        helo=meta.get("X-Helo-Args", [None])[0],
        client_addr=meta.get("X-Client-Addr", [""])[0],
        mail_args=mail_args,
        rcpt_args=rcpt_args,
        path=path,
    )


def _file_order(path: Path) -> tuple[int, int]:
    # mtime has only jiffy (~4 ms) granularity; on ext4/tmpfs inode numbers of files created
    # one after another increase, which orders back-to-back transactions correctly.
    try:
        st = path.stat()
    except OSError:
        return (0, 0)
    return (st.st_mtime_ns, st.st_ino)


def open_files(pid: int) -> set[str]:
    """Paths of the files process ``pid`` has open (empty if it is gone)."""
    found = set()
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                found.add(os.readlink(fd))
    return found


def _commands(commands: Iterable[str]) -> str:
    return ",".join(c.strip().upper() for c in commands)


class SmtpSink(Server):
    """Postfix's smtp-sink on 127.0.0.1, dumping each transaction to a file.

    ``hard_reject``/``soft_reject``: commands answered 5xx/4xx (e.g. ``["RCPT"]``, ``["."]``
    for end of DATA), with ``hard_reply``/``soft_reply`` as the reply text
    (e.g. ``"554 5.7.1 go away"``). ``disconnect``: commands after which it hangs up
    silently; ``disconnect_421``: commands answered 421 then hang up. ``data_delay``: seconds
    to wait before answering DATA; ``delays``: per command delays (``{".": 3}``).

    Note: smtp-sink stores lines with CR removed, so :attr:`SinkMessage.data` is rebuilt
    with CRLF line ends; bare CR or LF sent by a client is not preserved. A transaction
    rejected at end of DATA (``"."``) is still dumped.
    """

    name = "smtp-sink"

    def __init__(
        self,
        *,
        hard_reject: Iterable[str] = (),
        soft_reject: Iterable[str] = (),
        hard_reply: str | None = None,
        soft_reply: str | None = None,
        disconnect: Iterable[str] = (),
        disconnect_421: Iterable[str] = (),
        data_delay: int | None = None,
        delays: Mapping[str, int] | None = None,
        hostname: str = "smtp-sink",
        extra_args: Sequence[str] = (),
        port: int | None = None,
        workdir: Path | None = None,
    ) -> None:
        super().__init__(workdir)
        self.binary = require_binary("/usr/sbin/smtp-sink", "postfix")
        self.options: list[str] = ["-h", hostname]
        if hard := _commands(hard_reject):
            self.options += ["-f", hard]
        if soft := _commands(soft_reject):
            self.options += ["-r", soft]
        if hard_reply:
            self.options += ["-B", hard_reply]
        if soft_reply:
            self.options += ["-b", soft_reply]
        if quiet := _commands(disconnect):
            self.options += ["-q", quiet]
        if q421 := _commands(disconnect_421):
            self.options += ["-Q", q421]
        if data_delay is not None:
            self.options += ["-w", str(data_delay)]
        for command, delay in (delays or {}).items():
            self.options += ["-W", f"{command.upper()}:{delay}"]
        self.options += list(extra_args)
        self._fixed_port = port

    @property
    def dump_dir(self) -> Path:
        return self.workdir / "dump"

    def start(self) -> Self:
        self._make_workdir()
        self.dump_dir.mkdir(exist_ok=True)
        for _attempt in range(3):
            self.port = self._fixed_port or free_port()
            # -u root: smtp-sink insists on -u when started as root; root can write the dump
            # directory. Template "msg." gets a random hex suffix per transaction.
            user = ["-u", "root"] if os.geteuid() == 0 else []
            argv = [self.binary, *user, "-d", f"{self.dump_dir}/msg.", *self.options]
            self._spawn([*argv, f"{self.host}:{self.port}", "128"])
            try:
                wait_for_port(self.host, self.port, timeout=5)
                self._check_alive()
                return self
            except (TimeoutError, ServerError):
                out = self.output()
                self._kill()
                if "bind" not in out.lower() or self._fixed_port:
                    raise ServerError(f"smtp-sink did not start:\n{out}") from None
        raise ServerError(f"smtp-sink did not start:\n{self.output()}")

    def messages(self) -> list[SinkMessage]:
        """Completed transactions, oldest first (order of completion, see ``_file_order``)."""
        found = []
        in_progress = open_files(self.proc.pid) if self.proc is not None else set()
        paths = sorted(self.dump_dir.glob("msg.*"), key=_file_order)
        for path in paths:
            if str(path) in in_progress:
                continue  # smtp-sink keeps the dump open until the end of the transaction
            try:
                found.append(parse_sink_dump(path.read_bytes(), path))
            except (ValueError, OSError):
                continue  # still being written
        return found

    def wait_messages(self, count: int, timeout: float = 10.0) -> list[SinkMessage]:
        """Wait until at least ``count`` transactions were captured; return them all."""
        _wait_until(lambda: len(self.messages()) >= count, timeout, f"{count} sink messages")
        return self.messages()

    def clear(self) -> None:
        """Forget captured messages."""
        for path in self.dump_dir.glob("msg.*"):
            path.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------
# Postfix

_MASTER_CF = """\
# service type  private unpriv  chroot  wakeup  maxproc command + args
{port}  inet  n       -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""

_QUEUE_DIRS = [
    *((d, "root", 0o700) for d in ("active", "bounce", "corrupt", "defer", "deferred")),
    *((d, "root", 0o700) for d in ("flush", "hold", "incoming", "private", "saved", "trace")),
    ("maildrop", "postdrop", 0o730),
    ("public", "postdrop", 0o710),
    ("pid", "root", 0o755),
]


class Postfix(Server):
    """A private Postfix instance listening on 127.0.0.1:<free port>.

    Everything (config, queue, data, log, virtual mailboxes) lives in the work directory.
    ``relayhost`` (e.g. ``sink.address`` or ``"[127.0.0.1]:2525"``) relays all non-local mail;
    without it non-local mail bounces (``default_transport = error``), so it never leaves
    loopback. ``virtual_mailboxes`` (addresses) are delivered to Maildirs below
    :attr:`maildir_base`. ``main_cf`` adds/overrides main.cf parameters; ``master_cf`` appends
    master.cf lines (e.g. a ``-o`` continuation for the smtpd service, or a policy service).
    Must run as root (Postfix's master).
    """

    name = "postfix"

    def __init__(
        self,
        *,
        relayhost: str | None = None,
        mydestination: str = "",
        virtual_mailboxes: Iterable[str] = (),
        main_cf: Mapping[str, str] | None = None,
        master_cf: Iterable[str] = (),
        smtpd_options: Mapping[str, str] | None = None,
        instance_name: str | None = None,
        port: int | None = None,
        workdir: Path | None = None,
        keep_workdir: bool = False,
    ) -> None:
        super().__init__(workdir, keep_workdir)
        self.postfix_bin = require_binary("/usr/sbin/postfix", "postfix")
        self.postconf_bin = require_binary("/usr/sbin/postconf", "postfix")
        require_root("Postfix")
        if relayhost is not None and not relayhost.startswith("["):
            host, _, rport = relayhost.rpartition(":")
            relayhost = f"[{host}]:{rport}" if host else f"[{rport}]"
        self.relayhost = relayhost
        self.mydestination = mydestination
        self.virtual_mailboxes = list(virtual_mailboxes)
        self.extra_main = dict(main_cf or {})
        self.extra_master = list(master_cf)
        self.smtpd_options = dict(smtpd_options or {})
        self.instance_name = instance_name
        self._fixed_port = port
        self.virtual_uid = 65534  # nobody: virtual(8) refuses uids below virtual_minimum_uid
        self.virtual_gid = 65534

    # paths -------------------------------------------------------------------------------------
    @property
    def config_dir(self) -> Path:
        return self.workdir / "etc"

    @property
    def queue_dir(self) -> Path:
        return self.workdir / "spool"

    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"

    @property
    def maildir_base(self) -> Path:
        return self.workdir / "vmail"

    @property
    def log_path(self) -> Path:
        return self.workdir / "maillog"

    def maildir(self, address: str) -> Path:
        """The Maildir of a virtual mailbox address."""
        local, _, domain = address.partition("@")
        return self.maildir_base / domain / local

    def maildir_messages(self, address: str) -> list[bytes]:
        """Raw bytes of the messages delivered to a virtual mailbox (new/ and cur/)."""
        box = self.maildir(address)
        paths = [*box.glob("new/*"), *box.glob("cur/*")]
        return [p.read_bytes() for p in sorted(paths, key=_file_order)]

    # configuration ------------------------------------------------------------------------------
    def main_cf(self) -> dict[str, str]:
        """The main.cf parameters this instance is started with."""
        tag = self.instance_name or self.workdir.name
        params: dict[str, str] = {
            "compatibility_level": "3.6",
            "queue_directory": str(self.queue_dir),
            "data_directory": str(self.data_dir),
            "meta_directory": "/etc/postfix",
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "syslog_name": f"postfix-{tag}",
            "maillog_file": str(self.log_path),
            "maillog_file_prefixes": str(self.workdir),
            "inet_interfaces": LOOPBACK,
            "inet_protocols": "ipv4",
            "myhostname": "mx.mailmoat.test",
            "mydomain": "mailmoat.test",
            "myorigin": "$myhostname",
            "mydestination": self.mydestination,
            "mynetworks": "127.0.0.0/8",
            "alias_maps": "",
            "alias_database": "",
            "local_recipient_maps": "",
            "biff": "no",
            "append_dot_mydomain": "no",
            "smtpd_banner": "$myhostname ESMTP",
            "smtp_dns_support_level": "disabled",
            "smtp_host_lookup": "native",
            "smtpd_peername_lookup": "no",
            "smtputf8_enable": "no",
            "delay_warning_time": "0",
            "queue_run_delay": "2s",
            "minimal_backoff_time": "2s",
            "maximal_backoff_time": "10s",
            "smtp_connect_timeout": "5s",
            "daemon_timeout": "60s",
            "notify_classes": "",
        }
        if self.relayhost:
            params["relayhost"] = self.relayhost
        else:
            params["default_transport"] = "error:5.3.0 no relayhost in this test instance"
        if self.virtual_mailboxes:
            domains = sorted({a.partition("@")[2] for a in self.virtual_mailboxes})
            params |= {
                "virtual_mailbox_domains": " ".join(domains),
                "virtual_mailbox_maps": f"texthash:{self.config_dir}/vmailbox",
                "virtual_mailbox_base": str(self.maildir_base),
                "virtual_uid_maps": f"static:{self.virtual_uid}",
                "virtual_gid_maps": f"static:{self.virtual_gid}",
            }
        params |= self.extra_main
        return params

    def master_cf(self) -> str:
        """The master.cf text this instance is started with."""
        text = _MASTER_CF.format(port=f"{LOOPBACK}:{self.port}")
        lines = text.splitlines()
        opts = [f"  -o {k}={v}" for k, v in self.smtpd_options.items()]
        lines[1:2] = [lines[1], *opts]
        return "\n".join([*lines, *self.extra_master]) + "\n"

    def _write_config(self) -> None:
        self.config_dir.mkdir(exist_ok=True)
        self.data_dir.mkdir(exist_ok=True)
        self.queue_dir.mkdir(exist_ok=True)
        shutil.chown(self.data_dir, "postfix", "postfix")
        # Pre-create the queue like post-install would: "postfix start" then skips its
        # create-missing pass over postfix-files (about 2 s per instance).
        for sub, group, mode in _QUEUE_DIRS:
            path = self.queue_dir / sub
            path.mkdir(exist_ok=True)
            shutil.chown(path, "root" if sub == "pid" else "postfix", group)
            path.chmod(mode)
        if self.virtual_mailboxes:
            self.maildir_base.mkdir(exist_ok=True)
            os.chown(self.maildir_base, self.virtual_uid, self.virtual_gid)
            rows = [
                f"{a} {a.partition('@')[2]}/{a.partition('@')[0]}/" for a in self.virtual_mailboxes
            ]
            (self.config_dir / "vmailbox").write_text("\n".join(rows) + "\n")
        self.log_path.touch()
        main = "".join(f"{k} = {v}\n" for k, v in self.main_cf().items())
        (self.config_dir / "main.cf").write_text(main)
        (self.config_dir / "master.cf").write_text(self.master_cf())
        self.backdate_config()

    def backdate_config(self) -> None:
        # Postfix programs re-read a main.cf (or a map) whose mtime is "now", sleeping 0.3 s
        # up to five times (~1.5 s per program); back-date the config files to skip that.
        past = time.time() - 5
        for path in self.config_dir.iterdir():
            os.utime(path, (past, past))

    def _run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "MAIL_CONFIG": str(self.config_dir)}
        result = subprocess.run(
            list(argv), capture_output=True, text=True, env=env, timeout=60, check=False
        )
        if check and result.returncode != 0:
            raise ServerError(f"{' '.join(argv)} failed:\n{result.stdout}{result.stderr}")
        return result

    def postfix(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``postfix -c CONFIG_DIR args...``."""
        return self._run(self.postfix_bin, "-c", str(self.config_dir), *args, check=check)

    def postconf(self, *args: str) -> str:
        """Run ``postconf -c CONFIG_DIR args...`` (e.g. ``"-e", "x=y"``) and return stdout."""
        out = self._run(self.postconf_bin, "-c", str(self.config_dir), *args).stdout
        self.backdate_config()
        return out

    def check(self) -> str:
        """Run ``postfix check`` (slow: ~2 s); return its warnings (empty when clean)."""
        result = self.postfix("check")
        return (result.stdout + result.stderr).strip()

    def reload(self) -> None:
        """``postfix reload`` after changing configuration with :meth:`postconf`."""
        self.postfix("reload")

    # lifecycle -------------------------------------------------------------------------------
    def start(self) -> Self:
        self._make_workdir()
        self.port = self._fixed_port or free_port()
        self._write_config()
        self.postfix("start")  # runs postfix-script check-fatal first
        _RUNNING.add(self)
        try:
            # Not wait_for_port(): a probe connection would show up in the smtpd log.
            _wait_until(lambda: tcp_listening(self.port), 15, f"postfix on {self.address}")
        except TimeoutError as exc:
            log = self.log_text()
            self.stop()
            raise ServerError(f"postfix did not listen on {self.address}:\n{log}") from exc
        return self

    @property
    def master_pid(self) -> int | None:
        with contextlib.suppress(OSError, ValueError):
            return int((self.queue_dir / "pid" / "master.pid").read_text().split()[0])
        return None

    def _kill(self) -> None:
        if not self.config_dir.is_dir():
            return
        master = self.master_pid
        if master is not None and _pid_alive(master):
            self.postfix("stop", check=False)  # "postfix stop" waits for master to exit
        # Every Postfix process started by "postfix -c DIR" inherits MAIL_CONFIG=DIR.
        leftovers = pids_with_env("MAIL_CONFIG", str(self.config_dir))
        if master is not None:
            leftovers.append(master)
        kill_pids(leftovers, grace=2.0)

    def log_text(self) -> str:
        """Contents of this instance's maillog_file."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_log(self, pattern: str, timeout: float = 10.0) -> re.Match[str]:
        """Wait until the regex ``pattern`` matches the log; return the match."""
        found: list[re.Match[str]] = []

        def check() -> bool:
            match = re.search(pattern, self.log_text(), re.MULTILINE)
            if match:
                found.append(match)
            return match is not None

        try:
            _wait_until(check, timeout, f"/{pattern}/ in postfix log")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n--- log ---\n{self.log_text()}") from None
        return found[0]

    def delivered_count(self) -> int:
        """Number of ``status=sent`` delivery records in the log (one per recipient)."""
        return len(re.findall(r" status=sent ", self.log_text()))

    def wait_delivered(self, count: int, timeout: float = 10.0) -> int:
        """Wait until at least ``count`` recipients were delivered (relayed or to a Maildir)."""
        try:
            _wait_until(lambda: self.delivered_count() >= count, timeout, f"{count} deliveries")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n--- log ---\n{self.log_text()}") from None
        return self.delivered_count()


# --------------------------------------------------------------------------------------------
# rbldnsd


class Rbldnsd(Server):
    """rbldnsd serving DNSBL zones on 127.0.0.1:<port>/udp.

    ``zones`` maps a zone name to ``(dataset_type, data_text)``, e.g.
    ``{"zen.test": ("ip4set", ":127.0.0.2:Listed $\\n192.0.2.1\\n")}``; a value may also be a
    list of such pairs (a zone built from several datasets, e.g. ip4set + ip6trie).
    """

    name = "rbldnsd"

    def __init__(
        self,
        zones: Mapping[str, tuple[str, str] | Sequence[tuple[str, str]]],
        *,
        ttl: int = 60,
        extra_args: Sequence[str] = (),
        port: int | None = None,
        workdir: Path | None = None,
    ) -> None:
        super().__init__(workdir)
        self.binary = require_binary("/usr/sbin/rbldnsd", "rbldnsd")
        self.zones: dict[str, list[tuple[str, str]]] = {}
        for zone, spec in zones.items():
            if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], str):
                self.zones[zone] = [spec]
            else:
                self.zones[zone] = list(spec)
        self.ttl = ttl
        self.extra_args = list(extra_args)
        self._fixed_port = port

    def start(self) -> Self:
        self._make_workdir()
        specs = []
        for zone, datasets in self.zones.items():
            for n, (kind, text) in enumerate(datasets):
                fname = f"{zone}.{n}.{kind}"
                (self.workdir / fname).write_text(text if text.endswith("\n") else text + "\n")
                specs.append(f"{zone}:{kind}:{fname}")
        first = next(iter(self.zones), "test")
        for _attempt in range(3):
            self.port = self._fixed_port or free_port("udp")
            # -n: foreground; -w: data dir; -u: when root it would switch to "rbldns" by
            # default (fine, files are world readable) - be explicit; -4: IPv4 socket only.
            user = ["-u", "rbldns"] if os.geteuid() == 0 else []
            argv = [self.binary, "-n", "-4", *user, "-w", str(self.workdir)]
            argv += ["-b", f"{self.host}/{self.port}", "-t", str(self.ttl), *self.extra_args]
            self._spawn([*argv, *specs])
            try:
                wait_for_dns(self.port, first, timeout=5)
                self._check_alive()
                return self
            except (TimeoutError, ServerError):
                out = self.output()
                self._kill()
                if "in use" not in out.lower() or self._fixed_port:
                    raise ServerError(f"rbldnsd did not start:\n{out}") from None
        raise ServerError(f"rbldnsd did not start:\n{self.output()}")


def ipv4_dnsbl_name(ip: str, zone: str) -> str:
    """``192.0.2.1``, ``zen.test`` -> ``1.2.0.192.zen.test``."""
    return ".".join(reversed(ip.split("."))) + "." + zone


def ipv6_dnsbl_name(ip: str, zone: str) -> str:
    """IPv6 nibble-reversed name below ``zone`` (RFC 5782)."""
    import ipaddress

    nibbles = ipaddress.IPv6Address(ip).exploded.replace(":", "")
    return ".".join(reversed(nibbles)) + "." + zone


# --------------------------------------------------------------------------------------------
# NSD


class Nsd(Server):
    """NSD, authoritative for the given zones, on 127.0.0.1:<port> (UDP and TCP).

    ``zones`` maps a zone name to zone file text; the text may omit ``$ORIGIN``/``$TTL``/SOA/NS:
    if it has no SOA record, a default SOA and NS (``ns.<zone>``) are prepended.  Response rate
    limiting is off (NSD's default of 200 answers per second per client network would drop
    queries of busy tests and benchmarks, which then wait for their DNS timeout).
    """

    name = "nsd"

    def __init__(
        self,
        zones: Mapping[str, str],
        *,
        port: int | None = None,
        workdir: Path | None = None,
    ) -> None:
        super().__init__(workdir)
        self.binary = require_binary("/usr/sbin/nsd", "nsd")
        self.zones = {z.rstrip(".").lower(): text for z, text in zones.items()}
        self._fixed_port = port

    @staticmethod
    def zone_text(zone: str, text: str) -> str:
        """Complete zone file text (adds $ORIGIN, $TTL and SOA/NS when missing)."""
        head = []
        if "$ORIGIN" not in text:
            head.append(f"$ORIGIN {zone}.")
        if "$TTL" not in text:
            head.append("$TTL 60")
        if not re.search(r"\sSOA\s", text, re.IGNORECASE):
            head.append(f"@ IN SOA ns.{zone}. hostmaster.{zone}. 1 3600 600 86400 60")
            head.append(f"@ IN NS ns.{zone}.")
        return "\n".join([*head, text.strip(), ""])

    def conf_text(self) -> str:
        w = self.workdir
        lines = [
            "server:",
            f"  ip-address: {self.host}@{self.port}",
            f"  port: {self.port}",
            "  do-ip6: no",
            "  server-count: 1",
            "  reuseport: no",
            '  username: ""',
            '  chroot: ""',
            f'  zonesdir: "{w}"',
            f'  pidfile: "{w}/nsd.pid"',
            '  database: ""',
            f'  zonelistfile: "{w}/zone.list"',
            f'  xfrdfile: "{w}/xfrd.state"',
            f'  xfrdir: "{w}/xfr"',
            f'  logfile: "{w}/nsd.log"',
            "  verbosity: 1",
            "  hide-version: yes",
            "  rrl-ratelimit: 0",
            "  rrl-whitelist-ratelimit: 0",
            "remote-control:",
            "  control-enable: no",
        ]
        for zone in self.zones:
            lines += ["zone:", f"  name: {zone}", f'  zonefile: "{zone}.zone"']
        return "\n".join(lines) + "\n"

    def start(self) -> Self:
        self._make_workdir()
        (self.workdir / "xfr").mkdir(exist_ok=True)
        for zone, text in self.zones.items():
            (self.workdir / f"{zone}.zone").write_text(self.zone_text(zone, text))
        first = next(iter(self.zones), ".")
        for _attempt in range(3):
            self.port = self._fixed_port or free_port("both")
            conf = self.workdir / "nsd.conf"
            conf.write_text(self.conf_text())
            checkconf = shutil.which("nsd-checkconf", path="/usr/sbin:/usr/bin")
            if checkconf:
                res = subprocess.run([checkconf, str(conf)], capture_output=True, text=True)
                if res.returncode != 0:
                    raise ServerError(f"nsd-checkconf failed:\n{res.stdout}{res.stderr}")
            self._spawn([self.binary, "-d", "-c", str(conf)])
            try:
                wait_for_dns(self.port, first, timeout=8)
                self._check_alive()
                return self
            except (TimeoutError, ServerError):
                out = self.output() + self.output("nsd.log")
                self._kill()
                if "in use" not in out.lower() or self._fixed_port:
                    raise ServerError(f"nsd did not start:\n{out}") from None
        raise ServerError(f"nsd did not start:\n{self.output('nsd.log')}")

    def log_text(self) -> str:
        return self.output("nsd.log")


# --------------------------------------------------------------------------------------------
# Redis


class Redis(Server):
    """redis-server on 127.0.0.1:<port>, no persistence; supports failure injection."""

    name = "redis"

    def __init__(
        self,
        *,
        extra_args: Sequence[str] = (),
        port: int | None = None,
        workdir: Path | None = None,
    ) -> None:
        super().__init__(workdir)
        self.binary = require_binary("redis-server", "redis-server")
        self.extra_args = list(extra_args)
        self._fixed_port = port

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def _launch(self) -> None:
        argv = [self.binary, "--port", str(self.port), "--bind", self.host]
        argv += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
        argv += ["--dir", str(self.workdir), "--protected-mode", "no", *self.extra_args]
        self._spawn(argv)
        wait_for_port(self.host, self.port, timeout=10)
        self._check_alive()

    def start(self) -> Self:
        self._make_workdir()
        for _attempt in range(3):
            self.port = self._fixed_port or free_port()
            try:
                self._launch()
                return self
            except (TimeoutError, ServerError):
                out = self.output()
                self._kill()
                if "in use" not in out.lower() or self._fixed_port:
                    raise ServerError(f"redis-server did not start:\n{out}") from None
        raise ServerError(f"redis-server did not start:\n{self.output()}")

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections hang, as with an overloaded server."""
        if self.proc is not None:
            os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """Undo :meth:`pause` (SIGCONT)."""
        if self.proc is not None:
            os.kill(self.proc.pid, signal.SIGCONT)

    def kill(self) -> None:
        """Kill the server abruptly (SIGKILL); the port then refuses connections."""
        proc, self.proc = self.proc, None
        if proc is not None:
            proc.kill()
            proc.wait(timeout=5)

    def restart(self) -> None:
        """Start again on the same port (after :meth:`kill`); data is gone."""
        self._kill()
        for _ in range(50):
            try:
                self._launch()
                return
            except (TimeoutError, ServerError):
                self._kill()
                time.sleep(0.1)
        raise ServerError(f"redis-server did not restart on {self.address}")


# --------------------------------------------------------------------------------------------
# swaks


@dataclass(frozen=True)
class SwaksResult:
    returncode: int  # 0 ok; 23/24/25 = rejected at MAIL/RCPT/DATA, see swaks(1)
    transcript: str


def swaks(
    server: str | Server, *args: str, timeout: float = 30.0, check: bool = False
) -> SwaksResult:
    """Run ``swaks --server HOST:PORT args...``; return exit code and full transcript."""
    binary = require_binary("swaks", "swaks")
    target = server.address if isinstance(server, Server) else server
    result = subprocess.run(
        [binary, "--server", target, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    out = SwaksResult(result.returncode, result.stdout + result.stderr)
    if check and out.returncode != 0:
        raise ServerError(f"swaks exited {out.returncode}:\n{out.transcript}")
    return out
