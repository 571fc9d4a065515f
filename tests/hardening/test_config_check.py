"""One validation path: ``mailmoat config --check`` finds what ``serve`` would trip on.

Every config key has at least one bad value here; each must make
``config --check`` exit 2 with a line naming the key. The configurations that
used to pass ``--check`` and then end in a traceback at start (bad CIDRs,
regexes, list entries, missing files, unknown log level or store scheme, the
file being a directory or not UTF-8, the address in use) must make every
serving command exit 2 with the same lines and no traceback.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tomllib
from collections.abc import Callable
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

import pytest

from gateway_harness import write_test_config
from mailmoat import cli
from mailmoat.commands.config import render
from mailmoat.config import Config, load_config

MISSING = "/nonexistent/mailmoat-test/absent"

# key -> TOML text that gives that key (alone) a bad value.
BAD_VALUES: dict[str, str] = {
    "smtp.listen": '[smtp]\nlisten = "127.0.0.1:99999"',
    "smtp.hostname": '[smtp]\nhostname = "mx example"',
    "smtp.banner": '[smtp]\nbanner = "ok\\r\\n250 injected"',
    "smtp.max_message_size": "[smtp]\nmax_message_size = 0",
    "smtp.max_recipients": "[smtp]\nmax_recipients = 0",
    "smtp.max_connections": "[smtp]\nmax_connections = 0",
    "smtp.workers": "[smtp]\nworkers = -1",
    "smtp.max_command_length": "[smtp]\nmax_command_length = 10",
    "smtp.max_line_length": "[smtp]\nmax_line_length = -1",
    "smtp.command_timeout": "[smtp]\ncommand_timeout = 0",
    "smtp.bare_newline": '[smtp]\nbare_newline = "maybe"',
    "smtp.tls_cert": f'[smtp]\ntls_cert = "{MISSING}.pem"\ntls_key = "{MISSING}.key"',
    "smtp.tls_key": '[smtp]\ntls_key = "key.pem"',
    "smtp.xforward_hosts": '[smtp]\nxforward_hosts = ["10.0.0.0/33"]',
    "smtp.shutdown_grace": "[smtp]\nshutdown_grace = -1",
    "smtp.recipient_overshoot_limit": "[smtp]\nrecipient_overshoot_limit = 0",
    "smtp.max_inflight_bytes": "[smtp]\nmax_inflight_bytes = -1",
    "relay.domains": '[relay]\ndomains = ["exa mple.org"]',
    "relay.upstream": '[relay]\nupstream = "mx:port"',
    "relay.connect_timeout": "[relay]\nconnect_timeout = 0",
    "relay.command_timeout": "[relay]\ncommand_timeout = -5",
    "relay.data_timeout": "[relay]\ndata_timeout = 0",
    "delivery.maildir": '[delivery]\nmaildir = ""',
    "actions.reject": "[actions]\nreject = 5.0",
    "actions.quarantine": "[actions]\nquarantine = 20.0",
    "actions.soft_reject": "[actions]\nsoft_reject = 15.0",
    "actions.add_header": "[actions]\nadd_header = 16.0",
    "actions.greylist": "[actions]\ngreylist = 15.0",
    "actions.reject_before_data": '[actions]\nreject_before_data = "yes"',
    "protocol.non_smtp_command": '[protocol]\nnon_smtp_command = "kill"',
    "protocol.bare_newline": '[protocol]\nbare_newline = "reject"',
    "protocol.pipelining": '[protocol]\npipelining = "yes"',
    "protocol.hard_error_limit": "[protocol]\nhard_error_limit = 0",
    "protocol.strict_8bit": "[protocol]\nstrict_8bit = 1",
    "pregreet.delay": "[pregreet]\ndelay = -1",
    "pregreet.action": '[pregreet]\naction = "reject"',
    "pregreet.pass_ttl": "[pregreet]\npass_ttl = -1",
    "store.url": '[store]\nurl = "postgres://db/mailmoat"',
    "store.fail_mode": '[store]\nfail_mode = "crash"',
    "quarantine.directory": '[quarantine]\ndirectory = ""',
    "quarantine.retention_days": "[quarantine]\nretention_days = 0",
    "log.level": '[log]\nlevel = "VERBOSE"',
    "log.target": '[log]\ntarget = "file"',
    "log.facility": '[log]\nfacility = "kern"',
    "log.socket": '[log]\nsocket = "/dev/my log"',
    "process.user": '[process]\nuser = "no-such-user-mailmoat"',
    "process.group": '[process]\ngroup = "no-such-group-mailmoat"',
    "stats.enabled": '[stats]\nenabled = "no"',
    "stats.node": '[stats]\nnode = "node one"',
    "stats.flush_interval": "[stats]\nflush_interval = 0",
    "stats.minute_retention_hours": "[stats]\nminute_retention_hours = 0",
    "stats.hour_retention_days": "[stats]\nhour_retention_days = -1",
    "stats.day_retention_days": "[stats]\nday_retention_days = 0",
    "stats.history_days": "[stats]\nhistory_days = 0",
    "stats.history_max_per_hour": "[stats]\nhistory_max_per_hour = 0",
    "stats.step_threshold": "[stats]\nstep_threshold = 0",
    "stats.step_min_baseline": "[stats]\nstep_min_baseline = -1",
    "web.enabled": "[web]\nenabled = 0",
    "web.listen": '[web]\nlisten = "0.0.0.0:8025"',
    "web.password_hash": '[web]\npassword_hash = "hunter2"',
    "web.secret_key": '[web]\nsecret_key = "a\\u0000b"',
    "web.session_hours": "[web]\nsession_hours = 0",
    "web.allowed_hosts": '[web]\nallowed_hosts = ["bad host"]',
    "web.max_login_failures": "[web]\nmax_login_failures = 0",
    "web.learn_token": '[web]\nlearn_token = "short"',
    "dns.nameserver": '[dns]\nnameserver = "127.0.0.1:70000"',
    "dns.timeout": "[dns]\ntimeout = 0",
    "dns.min_ttl": "[dns]\nmin_ttl = -1",
    "dns.max_ttl": "[dns]\nmax_ttl = 10",
    "dns.cache_size": "[dns]\ncache_size = -1",
    "dnsbl.sites": '[dnsbl]\nsites = ["zen.spamhaus.org=127.0.0.[2..999]"]',
    "dnsbl.threshold": "[dnsbl]\nthreshold = 0",
    "rdns.skip_networks": '[rdns]\nskip_networks = ["127.0.0.0/8", "not-a-net"]',
    "rdns.dynamic_patterns": '[rdns]\ndynamic_patterns = ["dyn(amic"]',
    "greylist.enabled": '[greylist]\nenabled = "true"',
    "greylist.mode": '[greylist]\nmode = "some"',
    "greylist.delay": "[greylist]\ndelay = -1",
    "greylist.retry_window": "[greylist]\nretry_window = 100",
    "greylist.max_age": "[greylist]\nmax_age = 0",
    "greylist.auto_allowlist": "[greylist]\nauto_allowlist = -1",
    "greylist.ipv4_prefix": "[greylist]\nipv4_prefix = 33",
    "greylist.ipv6_prefix": "[greylist]\nipv6_prefix = 129",
    "ratelimit.exempt": '[ratelimit]\nexempt = ["127.0.0.1/8/8"]',
    "ratelimit.window": "[ratelimit]\nwindow = 0",
    "ratelimit.connections_per_ip": "[ratelimit]\nconnections_per_ip = -1",
    "ratelimit.connections_per_net": "[ratelimit]\nconnections_per_net = -1",
    "ratelimit.concurrent_per_ip": "[ratelimit]\nconcurrent_per_ip = -1",
    "ratelimit.concurrent_per_net": "[ratelimit]\nconcurrent_per_net = -1",
    "ratelimit.messages_per_ip": "[ratelimit]\nmessages_per_ip = -1",
    "ratelimit.messages_per_sender": "[ratelimit]\nmessages_per_sender = -1",
    "ratelimit.recipients_per_ip": "[ratelimit]\nrecipients_per_ip = -1",
    "ratelimit.recipients_per_sender": "[ratelimit]\nrecipients_per_sender = -1",
    "ratelimit.ipv4_prefix": "[ratelimit]\nipv4_prefix = -1",
    "ratelimit.ipv6_prefix": "[ratelimit]\nipv6_prefix = 200",
    "ratelimit.slot_bucket": "[ratelimit]\nslot_bucket = 0",
    "lists.allow": '[lists]\nallow = ["192.0.2.0/40"]',
    "lists.deny": '[lists]\ndeny = ["spammer"]',
    "lists.allow_files": f'[lists]\nallow_files = ["{MISSING}.list"]',
    "lists.deny_files": f'[lists]\ndeny_files = ["{MISSING}.list"]',
    "lists.reload_interval": "[lists]\nreload_interval = 0",
    "auth.authserv_id": '[auth]\nauthserv_id = "mx; dkim=pass"',
    "auth.dns_timeout": "[auth]\ndns_timeout = 0",
    "auth.spf_helo": '[auth]\nspf_helo = "on"',
    "auth.dkim_max_signatures": "[auth]\ndkim_max_signatures = -1",
    "auth.dkim_min_key_bits": "[auth]\ndkim_min_key_bits = -1",
    "auth.dmarc_reject_action": '[auth]\ndmarc_reject_action = "bounce"',
    "auth.dmarc_quarantine_action": '[auth]\ndmarc_quarantine_action = "drop"',
    "urlbl.zones": '[urlbl]\nzones = ["DBL:dbl.spamhaus.org=127.0.1"]',
    "urlbl.local_lists": f'[urlbl]\nlocal_lists = ["LOCAL={MISSING}.txt"]',
    "urlbl.dns_timeout": "[urlbl]\ndns_timeout = 0",
    "urlbl.max_domains": "[urlbl]\nmax_domains = -1",
    "urlbl.skip_domains": '[urlbl]\nskip_domains = ["exa mple.org"]',
    "rules.files": f'[rules]\nfiles = ["{MISSING}.toml"]',
    "rules.bundled": '[rules]\nbundled = "yes"',
    "rules.sa_default": '[rules]\nsa_default = "yes"',
    "rules.sa_paths": f'[rules]\nsa_paths = ["{MISSING}.cf"]',
    "attachments.bad_extensions": '[attachments]\nbad_extensions = [".EXE"]',
    "attachments.max_archive_entries": "[attachments]\nmax_archive_entries = 0",
    "attachments.max_compression_ratio": "[attachments]\nmax_compression_ratio = 0",
    "attachments.max_archive_total": "[attachments]\nmax_archive_total = 0",
    "bulk.window": "[bulk]\nwindow = 0",
    "bulk.low": "[bulk]\nlow = 0",
    "bulk.medium": "[bulk]\nmedium = 200",
    "bulk.high": "[bulk]\nhigh = 10",
    "bulk.min_words": "[bulk]\nmin_words = -1",
    "bulk.cache_seconds": "[bulk]\ncache_seconds = -1",
    "milter.listen": '[milter]\nlisten = ""',
    "milter.timeout": "[milter]\ntimeout = 0",
    "milter.max_headers": "[milter]\nmax_headers = 0",
    "milter.max_header_bytes": "[milter]\nmax_header_bytes = 10",
    "milter.max_connections": "[milter]\nmax_connections = 0",
    "policy.listen": '[policy]\nlisten = "127.0.0.1:-1"',
    "policy.defer_if_permit": '[policy]\ndefer_if_permit = "no"',
    "policy.timeout": "[policy]\ntimeout = -1",
    "cluster.model_reload_interval": "[cluster]\nmodel_reload_interval = -1",
    "classifier.model_path": f'[classifier]\nmodel_path = "{MISSING}.bin"',
    "classifier.hash_bits": "[classifier]\nhash_bits = 64",
    "classifier.spam_threshold": "[classifier]\nspam_threshold = 1.5",
    "classifier.ham_threshold": "[classifier]\nham_threshold = 0.95",
    "classifier.spam_curve": "[classifier]\nspam_curve = [[0.9], [0.99, 5.0]]",
    "classifier.ham_curve": "[classifier]\nham_curve = [[0.001, -3.0], [0.1, -0.5]]",
    "classifier.autolearn": '[classifier]\nautolearn = "yes"',
    "classifier.autolearn_spam_threshold": "[classifier]\nautolearn_spam_threshold = 0",
    "classifier.autolearn_min_sender_points": "[classifier]\nautolearn_min_sender_points = -1",
    "classifier.autolearn_min_content_points": "[classifier]\nautolearn_min_content_points = -1",
    "classifier.autolearn_ham_threshold": "[classifier]\nautolearn_ham_threshold = 13.0",
    "classifier.autolearn_flush_interval": "[classifier]\nautolearn_flush_interval = 0",
    "classifier.autolearn_max_pending": "[classifier]\nautolearn_max_pending = 0",
    "stats.source_silence": "[stats]\nsource_silence = 0",
    "stats.source_min_spam": "[stats]\nsource_min_spam = 0",
    "reputation.enabled": '[reputation]\nenabled = "yes"',
    "reputation.prefix_table": f'[reputation]\nprefix_table = "{MISSING}.csv"',
    "reputation.ipv4_prefix": "[reputation]\nipv4_prefix = 33",
    "reputation.ipv6_prefix": "[reputation]\nipv6_prefix = 8",
    "reputation.half_life": "[reputation]\nhalf_life = 0",
    "reputation.retention": "[reputation]\nretention = 10",
    "reputation.flush_interval": "[reputation]\nflush_interval = 0",
    "reputation.min_messages": "[reputation]\nmin_messages = 0",
    "reputation.bad_share": "[reputation]\nbad_share = 1.5",
    "reputation.good_share": "[reputation]\ngood_share = 0",
    "reputation.own_networks": '[reputation]\nown_networks = ["10.0.0.0/99"]',
    "reputation.cache_seconds": "[reputation]\ncache_seconds = -1",
    "reports.enabled": '[reports]\nenabled = "no"',
    "reports.contacts": f'[reports]\ncontacts = "{MISSING}.txt"',
    "reports.smarthost": '[reports]\nsmarthost = "127.0.0.1:99999"',
    "reports.sender": '[reports]\nsender = "not an address"',
    "reports.max_per_minute": "[reports]\nmax_per_minute = 0",
    "reports.batch_size": "[reports]\nbatch_size = 0",
    "zone.name": '[zone]\nname = "bad zone"',
    "zone.min_bad": "[zone]\nmin_bad = 0",
    "zone.bad_share": "[zone]\nbad_share = 2",
    "zone.networks": '[zone]\nnetworks = "yes"',
    "zone.ttl": "[zone]\nttl = 0",
    "zone.expiry": "[zone]\nexpiry = 1",
    "zone.allow": '[zone]\nallow = ["nowhere"]',
    "zone.txt": '[zone]\ntxt = ""',
    "zone.lookup_url": '[zone]\nlookup_url = "has spaces {ip}"',
    "classifier.model_versions": "[classifier]\nmodel_versions = -1",
    "milter.quarantine": '[milter]\nquarantine = "postfix"',
    "quarantine.keep_accepted_days": "[quarantine]\nkeep_accepted_days = -1",
    "checks.NAME": "[checks.no_such_check]\ntimeout = 1",
    "checks.NAME.enabled": '[checks.helo]\nenabled = "off"',
    "checks.NAME.timeout": "[checks.helo]\ntimeout = 0",
    "checks.NAME.fail_mode": '[checks.helo]\nfail_mode = "explode"',
    "scores": '[scores]\n"NOT A SYMBOL" = 1',
    "scores.VALUE": '[scores]\nHELO_BARE_IP = "high"',
}

# What the line for a key names, where the table's key is a placeholder.
NAMED_AS = {
    "checks.NAME": "checks.no_such_check",
    "checks.NAME.enabled": "checks.helo.enabled",
    "checks.NAME.timeout": "checks.helo.timeout",
    "checks.NAME.fail_mode": "checks.helo.fail_mode",
    "scores": "scores.NOT A SYMBOL",
    "scores.VALUE": "scores.HELO_BARE_IP",
}

# Damage that used to be accepted silently or to end in a traceback at start:
# each must be refused by every serving command too.
AT_START = [
    "lists.allow",
    "ratelimit.exempt",
    "rdns.skip_networks",
    "rdns.dynamic_patterns",
    "dnsbl.sites",
    "urlbl.zones",
    "smtp.tls_cert",
    "lists.deny_files",
    "log.level",
    "store.url",
    "stats.flush_interval",
    "quarantine.retention_days",
    "smtp.max_connections",
    "classifier.spam_curve",
    "actions.add_header",
]


def every_key() -> set[str]:
    defaults = Config()
    keys = {"checks.NAME", "scores"}
    for section in fields(defaults):
        value = getattr(defaults, section.name)
        if is_dataclass(value):
            keys.update(f"{section.name}.{item.name}" for item in fields(value))
    keys.update(f"checks.NAME.{item.name}" for item in fields(Config().check("x")))
    return keys


def check(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = cli.main(["config", "--config", str(path), "--check"])
    captured = capsys.readouterr()
    return code, [line for line in (captured.out + captured.err).splitlines() if line]


def test_the_table_covers_every_key() -> None:
    assert every_key() <= set(BAD_VALUES), sorted(every_key() - set(BAD_VALUES))


@pytest.mark.parametrize("key", sorted(BAD_VALUES))
def test_a_bad_value_fails_the_check_naming_its_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], key: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(BAD_VALUES[key] + "\n")
    code, lines = check(path, capsys)
    assert code == 2, lines
    named = NAMED_AS.get(key, key)
    assert any(named in line.split(": ", 2)[2] for line in lines), lines
    assert all(line.startswith("mailmoat: configuration error: ") for line in lines), lines


def test_the_embedded_defaults_check_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["config", "--check"]) == 0
    assert "ok" in capsys.readouterr().out
    written = tmp_path / "defaults.toml"
    written.write_text(render(load_config(None)))
    code, lines = check(written, capsys)
    assert code == 0 and lines == [f"ok: {written}"]


def test_every_problem_gets_its_own_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        "[stats]\nflush_interval = 0\n[quarantine]\nretention_days = 0\n"
        "[smtp]\nmax_connections = 0\nlistne = 1\n"
    )
    code, lines = check(path, capsys)
    assert code == 2
    for key in ("stats.flush_interval", "quarantine.retention_days", "smtp.max_connections"):
        assert sum(key in line for line in lines) == 1, lines
    assert any("unknown key smtp.listne" in line for line in lines)


@pytest.mark.parametrize(
    ("content", "expected"),
    [(None, "is a directory"), (b"[smtp]\nbanner = '\xff\xfe'\n", "not UTF-8")],
)
def test_the_file_itself_being_unusable_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes | None, expected: str
) -> None:
    path = tmp_path / "mailmoat.toml"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    code, lines = check(path, capsys)
    assert code == 2 and len(lines) == 1 and expected in lines[0], lines


def run_command(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mailmoat", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONFAULTHANDLER": ""},
    )


def test_serving_commands_refuse_what_check_refuses_without_a_traceback(tmp_path: Path) -> None:
    sections: dict[str, dict[str, Any]] = {}
    for key in AT_START:
        for name, table in tomllib.loads(BAD_VALUES[key]).items():
            sections.setdefault(name, {}).update(table)
    path = write_test_config(tmp_path, sections)
    message = tmp_path / "message.eml"
    message.write_bytes(b"Subject: x\r\n\r\nbody\r\n")
    outputs = [
        run_command("config", "--config", str(path), "--check"),
        run_command("serve", "--config", str(path)),
        run_command("milter", "--config", str(path)),
        run_command("policy", "--config", str(path)),
        run_command("scan", "--config", str(path), str(message)),
    ]
    expected = sorted(outputs[0].stderr.splitlines())
    for key in AT_START:
        assert sum(f": {key}" in line for line in expected) >= 1, (key, expected)
    for done in outputs:
        assert done.returncode == 2, done
        assert "Traceback" not in done.stderr
        assert sorted(done.stderr.splitlines()) == expected


def assert_exits_2_on_a_taken_port(
    tmp_path: Path, command: str, listen_key: str, config: Callable[[int], str]
) -> None:
    """``mailmoat COMMAND`` with ``config(port)`` on a port something else
    listens on exits 2 naming ``listen_key``, without a traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        path = tmp_path / "taken.toml"
        path.write_text(config(taken.getsockname()[1]))
        done = run_command(command, "--config", str(path))
    assert done.returncode == 2, done
    assert "Traceback" not in done.stderr
    assert f"{listen_key}: cannot listen on" in done.stderr, done.stderr


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_on_an_address_in_use_exits_2_naming_smtp_listen(
    tmp_path: Path, workers: int
) -> None:
    assert_exits_2_on_a_taken_port(
        tmp_path,
        "serve",
        "smtp.listen",
        lambda port: (
            f'[smtp]\nlisten = "127.0.0.1:{port}"\nworkers = {workers}\n'
            f'[store]\nurl = "sqlite:///{tmp_path}/store.db"\n'
            f'[delivery]\nmaildir = "{tmp_path}/maildir"\n'
            f'[quarantine]\ndirectory = "{tmp_path}/quarantine"\n'
            "[web]\nenabled = false\n"
        ),
    )


@pytest.mark.parametrize("front", ["milter", "policy"])
def test_a_front_on_an_address_in_use_exits_2_naming_its_listen(tmp_path: Path, front: str) -> None:
    assert_exits_2_on_a_taken_port(
        tmp_path,
        front,
        f"{front}.listen",
        lambda port: (
            f'[{front}]\nlisten = "127.0.0.1:{port}"\n'
            f'[store]\nurl = "sqlite:///{tmp_path}/store.db"\n'
        ),
    )


@pytest.mark.parametrize(
    "rule",
    [
        '[rules.BROKEN]\nheader = "Subject"\npattern = "(unclosed"\nscore = 1.0\n',
        '[rules.BROKEN]\nmeta = "NO_SUCH_RULE && ("\nscore = 1.0\n',
        "[rules.BROKEN\n",
    ],
)
def test_a_bad_rule_file_fails_the_check_instead_of_being_only_logged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], rule: str
) -> None:
    rules = tmp_path / "local.toml"
    rules.write_text(rule)
    path = tmp_path / "mailmoat.toml"
    path.write_text(f'[rules]\nfiles = ["{rules}"]\n')
    code, lines = check(path, capsys)
    assert code == 2 and lines, lines
    assert all("rules.files" in line for line in lines), lines
