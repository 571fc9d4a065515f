"""Tests for tests/servers.py: every launcher starts a real server on loopback and works."""

from __future__ import annotations

import smtplib
import socket
import time
from collections.abc import Callable
from pathlib import Path

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.resolver
import pytest
import redis

from servers import (
    Nsd,
    Postfix,
    Rbldnsd,
    Redis,
    SmtpSink,
    free_port,
    ipv4_dnsbl_name,
    ipv6_dnsbl_name,
    parse_sink_dump,
    pids_with_env,
    require_binary,
    swaks,
    tcp_listening,
    wait_for_port,
)

# A message exercising dot-stuffing, 8-bit data, a 990-byte line and an empty last line.
# (Postfix's smtp client folds lines longer than smtp_line_length_limit = 998.)
MESSAGE = (
    b"From: Alice <alice@sender.test>\r\n"
    b"To: bob@rcpt.test\r\n"
    b"Subject: byte exact\r\n"
    b"Date: Sat, 28 Nov 2026 02:59:56 +0000\r\n"
    b"Message-ID: <byte-exact@sender.test>\r\n"
    b"\r\n"
    b".leading dot\r\n"
    b"..two dots\r\n"
    b".\r\n"
    b"caf\xc3\xa9 8bit   \r\n" + b"x" * 990 + b"\r\n"
    b"\r\n"
)


def resolver(port: int) -> dns.resolver.Resolver:
    res = dns.resolver.Resolver(configure=False)
    res.nameservers = ["127.0.0.1"]
    res.port = port
    res.lifetime = 3.0
    return res


def answers(res: dns.resolver.Resolver, name: str, rdtype: str) -> list[str]:
    return [r.to_text() for r in res.resolve(name, rdtype)]


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


# --------------------------------------------------------------------------------------------
# helpers


def test_require_binary_skips_locally_and_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    assert require_binary("sh").endswith("/sh")
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match=r"nope-x not installed \(Debian package p\)"):
        require_binary("nope-x", "p")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="nope-x not installed"):
        require_binary("/usr/sbin/nope-x", "p")


def test_free_port_and_wait_for_port() -> None:
    port = free_port()
    assert not tcp_listening(port)
    with pytest.raises(TimeoutError):
        wait_for_port("127.0.0.1", port, timeout=0.2)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        wait_for_port("127.0.0.1", port, timeout=2)
        assert tcp_listening(port)
    udp = free_port("both")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", udp))


def test_parse_sink_dump() -> None:
    raw = (
        b"X-Client-Addr: 127.0.0.1\nX-Client-Proto: ESMTP\nX-Helo-Args: client.test\n"
        b"X-Mail-Args: <> BODY=8BITMIME\nX-Rcpt-Args: <a@x.test>\n"
        b"X-Rcpt-Args: <b@x.test> NOTIFY=NEVER\n"
        b"Received: from client.test ([127.0.0.1])\n\tby smtp-sink (smtp-sink) with ESMTP id 1;\n"
        b"\tSat, 28 Nov 2026 02:59:56 +0000 (UTC)\nSubject: s\n\nbody\n\n"
    )
    msg = parse_sink_dump(raw)
    assert msg.mail_from == ""
    assert msg.rcpt_to == ("a@x.test", "b@x.test")
    assert msg.helo == "client.test"
    assert msg.data == b"Subject: s\r\n\r\nbody\r\n"
    with pytest.raises(ValueError):
        parse_sink_dump(raw[:-1])  # no terminating empty line yet


# --------------------------------------------------------------------------------------------
# smtp-sink


@pytest.mark.integration
def test_smtp_sink_captures_byte_exact(smtp_sink: SmtpSink) -> None:
    long_line = b"y" * 20000 + b"\r\n"
    with smtplib.SMTP(smtp_sink.host, smtp_sink.port, timeout=10) as client:
        client.sendmail("alice@sender.test", ["bob@rcpt.test", "carol@rcpt.test"], MESSAGE)
        client.sendmail("", ["postmaster@rcpt.test"], b"Subject: bounce\r\n\r\nx")
        client.sendmail("a@sender.test", ["b@rcpt.test"], b"Subject: long\r\n\r\n" + long_line)
    # Three transactions can complete within one mtime tick, so match them by sender
    # rather than by the order of their dump files.
    by_sender = {m.data.split(b"\r\n", 1)[0]: m for m in smtp_sink.wait_messages(3)}
    first = next(m for m in by_sender.values() if m.mail_from == "alice@sender.test")
    second = by_sender[b"Subject: bounce"]
    third = by_sender[b"Subject: long"]
    assert first.mail_from == "alice@sender.test"
    assert first.rcpt_to == ("bob@rcpt.test", "carol@rcpt.test")
    assert first.data == MESSAGE
    assert first.client_addr == "127.0.0.1"
    assert second.mail_from == ""
    assert second.data == b"Subject: bounce\r\n\r\nx\r\n"  # the client adds the final CRLF
    assert third.data == b"Subject: long\r\n\r\n" + long_line
    smtp_sink.clear()
    assert smtp_sink.messages() == []


@pytest.mark.integration
def test_smtp_sink_rejects_and_delays(smtp_sink_factory: Callable[..., SmtpSink]) -> None:
    rcpt_reject = smtp_sink_factory(hard_reject=["RCPT"], hard_reply="554 5.7.1 go away")
    with (
        smtplib.SMTP(rcpt_reject.host, rcpt_reject.port, timeout=10) as client,
        pytest.raises(smtplib.SMTPRecipientsRefused) as refused,
    ):
        client.sendmail("a@sender.test", ["b@rcpt.test"], b"Subject: x\r\n\r\nx\r\n")
    assert refused.value.recipients == {"b@rcpt.test": (554, b"5.7.1 go away")}

    slow_tempfail = smtp_sink_factory(soft_reject=["."], data_delay=1)
    started = time.monotonic()
    with (
        smtplib.SMTP(slow_tempfail.host, slow_tempfail.port, timeout=10) as client,
        pytest.raises(smtplib.SMTPDataError) as data_error,
    ):
        client.sendmail("a@sender.test", ["b@rcpt.test"], b"Subject: x\r\n\r\nx\r\n")
    assert data_error.value.smtp_code == 450
    assert time.monotonic() - started >= 0.9
    assert len(rcpt_reject.messages()) == 0
    # smtp-sink dumps a transaction even when it rejects the end of DATA.
    assert len(slow_tempfail.messages()) == 1


@pytest.mark.integration
def test_swaks_against_smtp_sink(smtp_sink_factory: Callable[..., SmtpSink]) -> None:
    sink = smtp_sink_factory()
    ok = swaks(sink, "--from", "a@sender.test", "--to", "b@rcpt.test", "--body", "hello")
    assert ok.returncode == 0, ok.transcript
    assert "250 2.0.0 Ok" in ok.transcript
    assert sink.wait_messages(1)[0].rcpt_to == ("b@rcpt.test",)
    rejecting = smtp_sink_factory(hard_reject=["RCPT"])
    refused = swaks(rejecting.address, "--from", "a@sender.test", "--to", "b@rcpt.test")
    assert refused.returncode == 24  # swaks: RCPT failed
    assert "500 5.3.0" in refused.transcript


# --------------------------------------------------------------------------------------------
# Postfix


@pytest.mark.integration
def test_postfix_relays_to_smtp_sink(
    smtp_sink: SmtpSink, postfix_factory: Callable[..., Postfix]
) -> None:
    postfix = postfix_factory(relayhost=smtp_sink.address)
    assert postfix.check() == ""
    assert "daemon started" in postfix.log_text()
    with smtplib.SMTP(postfix.host, postfix.port, timeout=10) as client:
        client.sendmail("alice@sender.test", ["bob@rcpt.test"], MESSAGE)
    assert postfix.wait_delivered(1, timeout=15) == 1
    [msg] = smtp_sink.wait_messages(1)
    assert msg.mail_from == "alice@sender.test"
    assert msg.rcpt_to == ("bob@rcpt.test",)
    assert msg.data.endswith(MESSAGE)  # Postfix prepends Received: (and nothing else here)
    assert f"relay=127.0.0.1[127.0.0.1]:{smtp_sink.port}" in postfix.log_text()


@pytest.mark.integration
def test_postfix_virtual_maildir_two_instances_and_injection(
    postfix_factory: Callable[..., Postfix],
) -> None:
    final = postfix_factory(
        virtual_mailboxes=["bob@local.test"],
        main_cf={"smtpd_banner": "$myhostname ESMTP injected-banner"},
    )
    second_port = free_port()
    front = postfix_factory(
        relayhost=final.address,
        master_cf=[f"127.0.0.1:{second_port} inet n - n - - smtpd -o smtpd_banner=second-door"],
    )
    with smtplib.SMTP(timeout=10) as client:
        banner = client.connect(final.host, final.port)
        assert banner == (220, b"mx.mailmoat.test ESMTP injected-banner")
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            client.sendmail("a@sender.test", ["nobody@local.test"], b"Subject: x\r\n\r\nx\r\n")
        assert refused.value.recipients["nobody@local.test"][0] == 550
    with smtplib.SMTP(timeout=10) as client:
        assert client.connect("127.0.0.1", second_port) == (220, b"second-door")
        client.sendmail("alice@sender.test", ["bob@local.test"], MESSAGE)
    front.wait_delivered(1, timeout=15)
    final.wait_delivered(1, timeout=15)
    [delivered] = final.maildir_messages("bob@local.test")
    assert delivered.replace(b"\n", b"\r\n").endswith(MESSAGE)
    assert "status=sent (delivered to maildir)" in final.log_text()
    assert front.log_text() != final.log_text()  # separate log files per instance

    pids = pids_with_env("MAIL_CONFIG", str(front.config_dir))
    master = front.master_pid
    assert master is not None and pids
    front.stop()
    assert not alive(master)
    assert not [p for p in pids if alive(p)]
    assert not front.workdir.exists()


# --------------------------------------------------------------------------------------------
# DNS


@pytest.mark.integration
def test_rbldnsd_answers_listed_and_nxdomain(rbldnsd_factory: Callable[..., Rbldnsd]) -> None:
    server = rbldnsd_factory(
        {
            "zen.test": [
                ("ip4set", ":127.0.0.2:Listed $ see https://zen.test/$\n192.0.2.1\n"),
                ("ip6trie", "2001:db8::/64 :127.0.0.3:v6 listed\n"),
            ],
            "dbl.test": ("dnset", "spammer.example :127.0.1.2:bad domain\n"),
        }
    )
    res = resolver(server.port)
    v4 = ipv4_dnsbl_name("192.0.2.1", "zen.test")
    assert v4 == "1.2.0.192.zen.test"
    assert answers(res, v4, "A") == ["127.0.0.2"]
    assert answers(res, v4, "TXT") == ['"Listed 192.0.2.1 see https://zen.test/192.0.2.1"']
    v6 = ipv6_dnsbl_name("2001:db8::42", "zen.test")
    assert v6.startswith("2.4.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.")
    assert answers(res, v6, "A") == ["127.0.0.3"]
    assert answers(res, v6, "TXT") == ['"v6 listed"']
    assert answers(res, "spammer.example.dbl.test", "A") == ["127.0.1.2"]
    for unlisted in (ipv4_dnsbl_name("192.0.2.2", "zen.test"), "good.example.dbl.test"):
        with pytest.raises(dns.resolver.NXDOMAIN):
            res.resolve(unlisted, "A")


@pytest.mark.integration
def test_nsd_authoritative_records(nsd_factory: Callable[..., Nsd]) -> None:
    server = nsd_factory(
        {
            "example.test": (
                '@ IN TXT "v=spf1 ip4:192.0.2.0/24 -all"\n'
                '_dmarc IN TXT "v=DMARC1; p=reject"\n'
                'sel._domainkey IN TXT "v=DKIM1; k=rsa; " "p=MIGfMA0"\n'
                "@ IN MX 10 mail\n"
                "mail IN A 192.0.2.25\n"
            ),
            "2.0.192.in-addr.arpa": "25 IN PTR mail.example.test.\n",
        }
    )
    res = resolver(server.port)
    assert answers(res, "example.test", "TXT") == ['"v=spf1 ip4:192.0.2.0/24 -all"']
    assert answers(res, "sel._domainkey.example.test", "TXT") == ['"v=DKIM1; k=rsa; " "p=MIGfMA0"']
    assert answers(res, "example.test", "MX") == ["10 mail.example.test."]
    assert answers(res, "25.2.0.192.in-addr.arpa", "PTR") == ["mail.example.test."]
    query = dns.message.make_query("_dmarc.example.test", "TXT")
    tcp = dns.query.tcp(query, "127.0.0.1", timeout=3, port=server.port)
    assert tcp.answer[0].to_text().endswith('"v=DMARC1; p=reject"')
    query = dns.message.make_query("nope.example.test", "A")
    reply = dns.query.udp(query, "127.0.0.1", timeout=3, port=server.port)
    assert reply.rcode() == dns.rcode.NXDOMAIN
    assert reply.flags & dns.flags.AA


# --------------------------------------------------------------------------------------------
# Redis


@pytest.mark.integration
def test_redis_ping_pause_resume_kill_restart(redis_server: Redis) -> None:
    client = redis.Redis.from_url(redis_server.url, socket_timeout=0.5)
    assert client.ping()
    client.set("k", "v")
    redis_server.pause()
    with pytest.raises(redis.exceptions.TimeoutError):
        client.ping()
    redis_server.resume()
    client = redis.Redis.from_url(redis_server.url, socket_timeout=2)
    assert client.get("k") == b"v"
    port, pid = redis_server.port, redis_server.pid
    redis_server.kill()
    with pytest.raises(redis.exceptions.ConnectionError):
        client.ping()
    redis_server.restart()
    assert redis_server.port == port and redis_server.pid != pid
    assert client.ping() and client.get("k") is None


@pytest.mark.integration
def test_context_manager_leaves_nothing_behind() -> None:
    with Redis() as server:
        pid = server.pid
        workdir = server.workdir
        assert pid is not None and alive(pid)
    assert not alive(pid)
    assert not workdir.exists()
    with SmtpSink() as sink:
        pid = sink.pid
        assert pid is not None
    assert not alive(pid)
