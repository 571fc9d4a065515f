"""The configuration sections: frozen dataclasses whose defaults are the
embedded defaults. The comment above each field is its documentation
(``mailmoat config --reference`` prints them; docs/configuration.md is made
from that). Validation lives in ``mailmoat.config.loader``.
"""

from __future__ import annotations

import functools
import socket
from dataclasses import dataclass, field


@functools.cache
def _host_name() -> str:
    """The machine's name, asked once per process (a system call per message otherwise)."""
    return socket.gethostname()


@dataclass(frozen=True)
class SmtpConfig:
    """The SMTP front (``mailmoat serve``)."""

    # Address and port to listen on: "host:port", "[v6]:port"; port 0: any free.
    listen: str = "127.0.0.1:2525"
    # Our name in the banner, EHLO reply and Received headers.
    hostname: str = "localhost"
    # Text after the host name in the 220 banner.
    banner: str = "mailmoat ESMTP"
    # Largest message accepted, in bytes (advertised as SIZE; over it: 552 5.3.4).
    max_message_size: int = 26_214_400
    # Recipients per transaction; more get 452 4.5.3.
    max_recipients: int = 100
    # Recipients past max_recipients answered 452 4.5.3 without counting as
    # errors (toward protocol.hard_error_limit); each one beyond counts
    # (Postfix's smtpd_recipient_overshoot_limit).
    recipient_overshoot_limit: int = 1000
    # Bytes of message data a worker holds for all transactions in flight
    # (data being received, checked, delivered); over it MAIL with a SIZE that
    # does not fit and DATA get 452 4.3.1, and a message that overflows it
    # while arriving is refused at its end with 452 4.3.1 (its bytes are not
    # kept). A worker uses about 3.5 times this in memory; 0: no limit.
    max_inflight_bytes: int = 268_435_456
    # Concurrent connections per worker; more get 421 4.7.0 and are closed.
    max_connections: int = 20_000
    # Gateway processes sharing the listening socket; 0: one per CPU core.
    workers: int = 0
    # Command lines longer than this (RFC 5321: 512 with CRLF) get 500 5.5.2.
    max_command_length: int = 512
    # DATA lines longer than this many characters, not counting CRLF, make the
    # message be refused with 554 5.6.0 at end of DATA; 0: no limit, lines of
    # any length are passed on untouched, as Postfix does (RFC 5322's 998 binds
    # senders, and real ham goes past it).
    max_line_length: int = 0
    # Seconds to wait for a command or for the whole of DATA: then 421 4.4.2.
    command_timeout: float = 300.0
    # "normalize": a bare LF in DATA is taken as a line end (and sent on as
    # CRLF); "reject": the message is refused with 554 5.5.2 (Postfix 3.9's
    # smtpd_forbid_bare_newline).
    bare_newline: str = "normalize"
    # PEM certificate chain and key for STARTTLS; empty: STARTTLS not offered.
    tls_cert: str = ""
    tls_key: str = ""
    # Clients (CIDR) offered XFORWARD: a Postfix that uses us as its
    # smtpd_proxy_filter passes the real client's address, name and HELO.
    xforward_hosts: tuple[str, ...] = ()
    # Seconds SIGTERM waits for transactions in flight before tempfailing them.
    shutdown_grace: float = 30.0


@dataclass(frozen=True)
class RelayConfig:
    """Which mail we take, and where it goes."""

    # Recipient domains we accept mail for; ".example.org" also covers its
    # subdomains. Everything else: 554 5.7.1 relay access denied.
    domains: tuple[str, ...] = ("localhost",)
    # host:port of the mail server behind us; empty: deliver to the Maildir.
    upstream: str = ""
    # Seconds for connecting and greeting the upstream, for each of its
    # replies, and for its reply after the message: past them, 451 4.4.x.
    connect_timeout: float = 10.0
    command_timeout: float = 60.0
    data_timeout: float = 120.0


@dataclass(frozen=True)
class DeliveryConfig:
    """Embedded delivery, when no upstream is configured."""

    # Maildir that accepted mail is written to (fsynced before 250).
    maildir: str = "var/maildir"


@dataclass(frozen=True)
class ActionsConfig:
    """Score thresholds, each "at or above". 0 or negative disables one."""

    # 554 5.7.1 at end of DATA (550 5.7.1 at RCPT, see reject_before_data).
    reject: float = 15.0
    # Accepted with 250 but kept in the quarantine, not delivered.
    quarantine: float = 10.0
    # 451 4.7.1 at end of DATA for a score in [soft_reject, quarantine): the
    # retry brings the same message and the same score, so this refuses for
    # as long as the sender retries; 0 (the default) leaves the band to
    # greylisting, whose retries pass.
    soft_reject: float = 0.0
    # Delivered with X-Spam-Flag: YES and X-Spam-Status: Yes.
    add_header: float = 5.0
    # Greylisting band at RCPT (greylist.mode "score"): a client whose
    # connection, HELO and envelope evidence scores in [greylist, reject) is
    # greylisted, e.g. a Spamhaus PBL listing (2) or no reverse DNS plus a
    # HELO name that is not a domain (1.5 + 1).
    greylist: float = 2.0
    # Reject before DATA (at RCPT) once connection/helo/mail/rcpt evidence
    # alone reaches the reject threshold.
    reject_before_data: bool = True


@dataclass(frozen=True)
class ProtocolConfig:
    """postscreen-style protocol tests. Actions: "ignore" (log a symbol),
    "enforce" (refuse every RCPT with 550 5.5.1, log the envelope), "drop"
    (521 and close at once)."""

    non_smtp_command: str = "drop"
    # Bare LF ending an SMTP command line (bots' hand-made clients).
    bare_newline: str = "enforce"
    # Commands sent ahead of our replies by a client that was not offered
    # PIPELINING (HELO sessions) or before the banner's EHLO reply.
    pipelining: str = "enforce"
    # Errors (syntax, unknown commands, refusals) before we hang up (421).
    hard_error_limit: int = 20
    # 8-bit bytes in a message without BODY=8BITMIME/SMTPUTF8: false adds
    # the SMTP_8BIT_UNDECLARED symbol (most such mail is legitimate legacy
    # mail); true refuses it with 554 5.6.1.
    strict_8bit: bool = False


@dataclass(frozen=True)
class PregreetConfig:
    """Wait ``delay`` seconds before the banner for clients without a cached
    pass; a client that talks first is a bot (postscreen's pregreet test)."""

    delay: float = 6.0
    # "drop" (521 and close), "enforce" (refuse every RCPT), "ignore".
    action: str = "drop"
    pass_ttl: float = 86_400.0


@dataclass(frozen=True)
class CheckSettings:
    # false: the check is not built.
    enabled: bool = True
    # Seconds the check may take; past it, it has failed.
    timeout: float = 10.0
    # What a crashed or timed-out check means: "accept" (ignore it) or
    # "tempfail" (451 so the sender retries later).
    fail_mode: str = "accept"


_DEFAULT_CHECK_SETTINGS = CheckSettings()


@dataclass(frozen=True)
class StoreConfig:
    """Shared state: greylist, rate limits, caches, statistics, model."""

    # sqlite:///relative/path.db, sqlite:////absolute/path.db, or
    # redis://host:port/db?prefix=mm:&timeout=1.0 for a cluster.
    url: str = "sqlite:///var/mailmoat.db"
    # On store failure: "tempfail" (451) or "accept" (skip the stateful checks).
    fail_mode: str = "tempfail"


@dataclass(frozen=True)
class QuarantineConfig:
    """Messages kept aside instead of delivered (action quarantine)."""

    # Quarantined messages are files (fsynced before the client hears 250).
    directory: str = "var/quarantine"
    # Days a quarantined message is kept before it is deleted.
    retention_days: int = 30
    # Days a private copy of every accepted or tagged message is kept (in
    # <directory>/accepted) so the dashboard can learn it from the history
    # (docs/feedback.md); 0 keeps none.
    keep_accepted_days: int = 0


@dataclass(frozen=True)
class LogConfig:
    """Where log lines go (docs/logging.md: the one-line-per-transaction format)."""

    # DEBUG, INFO (one line per transaction), WARNING or ERROR.
    level: str = "INFO"
    # "stderr", "syslog" (RFC 3164 to the syslog socket) or "journald"
    # (the journal's native protocol, structured fields included).
    target: str = "stderr"
    # Syslog facility for "syslog" and "journald": mail, daemon, local0..local7.
    facility: str = "mail"
    # Socket path; empty: /dev/log for syslog, /run/systemd/journal/socket for journald.
    socket: str = ""


@dataclass(frozen=True)
class DnsConfig:
    """The resolver checks use (``mailmoat.dns.CachingResolver``)."""

    # "host:port" of a recursive resolver; empty: the system's (/etc/resolv.conf).
    nameserver: str = ""
    # Seconds one query may take, retries included; past it: status "timeout".
    timeout: float = 3.0
    # Answer TTLs are clamped to [min_ttl, max_ttl] seconds in the cache.
    min_ttl: float = 60.0
    max_ttl: float = 3600.0
    cache_size: int = 100_000


@dataclass(frozen=True)
class DnsblConfig:
    """postscreen-style DNS block/allow lists (see docs/screening.md for
    each list's terms of use; ``sites = []`` turns them all off).

    A site is ``[NAME:]zone[=filter][*weight]``, e.g.
    ``"zen.spamhaus.org=127.0.0.[2..11]*3"`` or ``"list.dnswl.org=127.0.[0..255].[1..3]*-2"``.
    """

    # Spamhaus ZEN by return code (SBL/CSS/DROP and XBL refuse alone, PBL
    # does not), SpamCop and PSBL as supporting evidence, and DNSWL by trust
    # level (none, low, medium/high) as postscreen's documentation weighs it.
    sites: tuple[str, ...] = (
        "ZEN_SBL:zen.spamhaus.org=127.0.0.[2;3;9]*3",
        "ZEN_XBL:zen.spamhaus.org=127.0.0.[4..7]*3",
        "ZEN_PBL:zen.spamhaus.org=127.0.0.[10;11]*2",
        "SPAMCOP:bl.spamcop.net=127.0.0.2*1",
        "PSBL:psbl.surriel.com=127.0.0.2*1",
        "DNSWL_NONE:list.dnswl.org=127.0.[2..255].0*-2",
        "DNSWL_LOW:list.dnswl.org=127.0.[2..255].1*-4",
        "DNSWL_HI:list.dnswl.org=127.0.[2..255].[2;3]*-6",
    )
    # Total weight at or above: the client is refused at RCPT with 554 5.7.1.
    threshold: float = 3.0


@dataclass(frozen=True)
class RdnsConfig:
    # Clients never looked up (loopback: local submission, like mynetworks).
    skip_networks: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    # Extra regular expressions (searched in the PTR name) marking dynamic hosts.
    dynamic_patterns: tuple[str, ...] = ()


@dataclass(frozen=True)
class GreylistConfig:
    enabled: bool = True
    # "score": only when the score at RCPT is in the greylisting band
    # (actions.greylist <= score < actions.reject); "all": every unknown client.
    mode: str = "score"
    delay: float = 300.0
    retry_window: float = 172_800.0
    max_age: float = 3_024_000.0
    # A client network becomes exempt after this many successful retries; 0: never.
    auto_allowlist: int = 5
    ipv4_prefix: int = 24
    ipv6_prefix: int = 64


@dataclass(frozen=True)
class RatelimitConfig:
    """Per-window counters; 0 disables one limit. Exempt networks skip all."""

    exempt: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    window: float = 60.0
    connections_per_ip: int = 60
    connections_per_net: int = 300
    concurrent_per_ip: int = 20
    concurrent_per_net: int = 100
    messages_per_ip: int = 120
    messages_per_sender: int = 120
    recipients_per_ip: int = 600
    recipients_per_sender: int = 600
    ipv4_prefix: int = 24
    ipv6_prefix: int = 64
    # Concurrency slots are time-bucketed counters of this length, so slots of
    # a crashed process vanish after two buckets.
    slot_bucket: float = 600.0


@dataclass(frozen=True)
class ListsConfig:
    """Static allow/deny entries: ``192.0.2.0/24``, ``helo:mx.example.org``,
    ``from:user@example.org``, ``from:example.org``, ``from:.example.org``."""

    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    # Files with one entry a line (# comments), re-read when they change.
    allow_files: tuple[str, ...] = ()
    deny_files: tuple[str, ...] = ()
    reload_interval: float = 5.0


@dataclass(frozen=True)
class AuthConfig:
    """Sender authentication (SPF, DKIM, DMARC) and Authentication-Results."""

    # Our authserv-id in Authentication-Results; "" means smtp.hostname.
    authserv_id: str = ""
    # Per DNS query; well below the checks' own timeouts.
    dns_timeout: float = 2.0
    # Also check the HELO identity (RFC 7208 section 2.3).
    spf_helo: bool = True
    # At most this many DKIM-Signature fields are verified per message.
    dkim_max_signatures: int = 8
    dkim_min_key_bits: int = 1024
    # What a DMARC failure under p=reject / p=quarantine does: "reject"
    # (550 5.7.1), "quarantine", or "score" (symbols only).
    dmarc_reject_action: str = "reject"
    dmarc_quarantine_action: str = "quarantine"


@dataclass(frozen=True)
class UrlblConfig:
    """Domain blocklists for URLs and host names found in messages."""

    # Like DNSBL sites: "[NAME:]zone[=filter][*weight]". Spamhaus DBL (its own
    # spam, phish, malware and botnet domains; abused legitimate domains
    # weigh less), SURBL (phishing, malware, abuse, cracked bits) and URIBL
    # black. The filters leave out every "query refused" answer (terms of
    # use: docs/checks/urlbl.md; "zones = []" turns them off).
    zones: tuple[str, ...] = (
        "DBL:dbl.spamhaus.org=127.0.1.[2..99]*4",
        "DBL:dbl.spamhaus.org=127.0.1.[102..199]*1.5",
        "SURBL:multi.surbl.org=127.0.0.[8..31;40..255]*3",
        "BLACK:multi.uribl.com=127.0.0.[2;3;6;7;10;11;14;15]*3",
    )
    # Local lists: "NAME=path" to a file of domains, one per line.
    local_lists: tuple[str, ...] = ()
    dns_timeout: float = 2.0
    max_domains: int = 40
    # Registered domains never looked up (e.g. your own, big providers).
    skip_domains: tuple[str, ...] = ()


@dataclass(frozen=True)
class RulesConfig:
    # Extra TOML rule files, loaded after the bundled set.
    files: tuple[str, ...] = ()
    bundled: bool = True
    # Load SpamAssassin's stock rules when installed: sa-update's directory
    # (/var/lib/spamassassin/VERSION/updates_spamassassin_org) when it holds
    # rules, else /usr/share/spamassassin (Debian's spamassassin package).
    sa_default: bool = True
    # The admin's own SpamAssassin rule files or directories (*.cf, like
    # local.cf), loaded after the stock rules (later definitions and scores win).
    sa_paths: tuple[str, ...] = ()


@dataclass(frozen=True)
class AttachmentsConfig:
    # Extensions (without dot, lower case) that are dangerous on their own;
    # empty means the built-in list.
    bad_extensions: tuple[str, ...] = ()
    max_archive_entries: int = 1000
    # Declared uncompressed/compressed ratio above which a member is a bomb.
    max_compression_ratio: int = 200
    max_archive_total: int = 512 * 1024 * 1024


@dataclass(frozen=True)
class BulkConfig:
    # Counts per fingerprint expire this many seconds after they started.
    window: float = 86_400.0
    # Distinct senders (client /24 or /64) seen with the same fingerprint.
    low: int = 5
    medium: int = 20
    high: int = 100
    # Bodies with fewer normalised words are not fingerprinted.
    min_words: int = 12
    # A sender network's count per band is reused this many seconds: its
    # repeats need no store round trip (0: read the store every time).
    cache_seconds: float = 1.0


@dataclass(frozen=True)
class StatsConfig:
    """Counters and history (``mailmoat.stats``); see docs/dashboard.md."""

    enabled: bool = True
    # Node name in counter and history keys; empty: the host name.
    node: str = ""
    # Seconds between flushes of the in-memory counters to the store.
    flush_interval: float = 5.0
    minute_retention_hours: int = 48
    hour_retention_days: int = 35
    day_retention_days: int = 400
    # History: kept this many days, at most this many records per node and hour.
    history_days: int = 7
    history_max_per_hour: int = 20_000
    # Step changes: |change| against the trailing 7-period median, judged only
    # when the baseline has at least this many messages per period.
    step_threshold: float = 0.5
    step_min_baseline: float = 20.0
    # Source events: a network or AS among the top spam sources (at least
    # source_min_spam quarantined or refused messages over the last week)
    # "went dark" once silent this many seconds, and "appeared" when first
    # seen within the last day.
    source_silence: float = 21_600.0
    source_min_spam: float = 50.0


@dataclass(frozen=True)
class MilterConfig:
    """``mailmoat milter``: the Sendmail/Postfix milter front (docs/postfix.md)."""

    listen: str = "127.0.0.1:8891"
    # Seconds without a packet from the MTA before the connection is closed.
    timeout: float = 300.0
    # Concurrent MTA connections; more are closed at once (logged), and the
    # MTA applies its milter_default_action (Postfix: tempfail).
    max_connections: int = 200
    # Header fields of one message: more fields, or more bytes of field names
    # and values, and the message is refused with 552 5.3.4 at end of data.
    max_headers: int = 1000
    max_header_bytes: int = 1_048_576
    # Where quarantined mail waits: "hold" (Postfix's hold queue: postqueue -p,
    # postsuper -H; not on the dashboard) or "mailmoat" (mailmoat's quarantine,
    # on the dashboard; the MTA discards its copy; releases go to
    # relay.upstream, an MTA listener without this milter, docs/postfix.md).
    quarantine: str = "hold"


@dataclass(frozen=True)
class PolicyConfig:
    """``mailmoat policy``: the Postfix policy delegation front (docs/postfix.md)."""

    listen: str = "127.0.0.1:10040"
    # Soft rejects answer "DEFER_IF_PERMIT text" (a later Postfix reject
    # wins) instead of the decision's own "451 4.7.1 text".
    defer_if_permit: bool = False
    # Seconds without a request before an idle connection is closed.
    timeout: float = 300.0


@dataclass(frozen=True)
class ClusterConfig:
    """Several gateways on one Redis store (docs/cluster.md)."""

    # Seconds between checks of the shared classifier model's version key;
    # 0 disables the reload (a learned model is then seen after a restart).
    model_reload_interval: float = 10.0


@dataclass(frozen=True)
class WebConfig:
    """The dashboard (``mailmoat.web``). Without ``password_hash`` it binds to
    loopback only; ``mailmoat web --hash-password`` makes a hash."""

    enabled: bool = True
    listen: str = "127.0.0.1:8025"
    password_hash: str = ""
    # Signs session cookies; empty: a random key per process.
    secret_key: str = ""
    session_hours: float = 12.0
    # Host names (or addresses) the dashboard answers to besides localhost,
    # loopback addresses and the web.listen host; ".example.org" also covers
    # its subdomains. Other Host headers get 400 (DNS rebinding), and POSTs
    # whose Origin is not one of them get 403.
    allowed_hosts: tuple[str, ...] = ()
    # Failed logins (form or HTTP Basic) from one client address before it
    # must wait: 429 for 30 s, doubling with each further failure (at most an
    # hour); forgotten an hour after the last failure.
    max_login_failures: int = 5
    # Bearer token for POST /api/learn/{spam,ham,forget} (an IMAP server's
    # feedback, docs/feedback.md), at least 16 characters; empty: that
    # endpoint answers 401 to everyone.
    learn_token: str = ""


@dataclass(frozen=True)
class ClassifierConfig:
    """The statistical classifier check (docs/classifier.md)."""

    # Model file; empty: the default model shipped in the package.
    model_path: str = ""
    # Hash space (2**bits weights) of models created from scratch (eval).
    hash_bits: int = 22
    # BAYES_SPAM at or above this spam probability, BAYES_HAM at or below
    # ham_threshold; nothing in between.
    spam_threshold: float = 0.9
    ham_threshold: float = 0.1
    # Score curves: (probability, score) points, linear in between, flat
    # beyond the ends. spam: rising probabilities; ham: falling ones. Chosen
    # from false-positive rates measured on ham the model never trained on
    # (docs/classifier.md): from 0.99 a verdict is right over 99.9% of the
    # time and tags on its own (5), one independent piece of evidence (~5)
    # takes it to quarantine (10); the classifier alone never reaches 10.
    spam_curve: tuple[tuple[float, float], ...] = (
        (0.9, 1.0),
        (0.95, 2.0),
        (0.99, 5.0),
        (0.999, 6.0),
        (0.9999, 7.0),
    )
    # BAYES_HAM credit by falling probability: at 0.001 and below no held-out
    # spam was credited.
    ham_curve: tuple[tuple[float, float], ...] = ((0.1, -0.5), (0.01, -1.5), (0.001, -3.0))
    # Autolearn (docs/classifier.md): the gateway learns from its own
    # confident verdicts into the shared model, guarded as SpamAssassin's
    # autolearn: spam when the score without the classifier's own BAYES_*
    # symbols reaches autolearn_spam_threshold, with at least
    # autolearn_min_sender_points from the connection, envelope and
    # authentication (DNSBL_, RDNS_, HELO_, SPF_, DKIM_, DMARC_...) and
    # autolearn_min_content_points from the content (rules, URIBL_...); ham
    # when SPF or DMARC passes and the whole score is at or below
    # autolearn_ham_threshold. Never mail on an admin's allow/deny list.
    autolearn: bool = True
    autolearn_spam_threshold: float = 12.0
    autolearn_min_sender_points: float = 3.0
    autolearn_min_content_points: float = 3.0
    autolearn_ham_threshold: float = 0.1
    # Seconds between saves of the autolearned messages into the shared model
    # (one load, learn and save per batch, in a worker thread); messages
    # waiting beyond autolearn_max_pending are not learned.
    autolearn_flush_interval: float = 60.0
    autolearn_max_pending: int = 1000
    # Model versions kept for `mailmoat model rollback` (each feedback save
    # is one; autolearn keeps at most one an hour); 0 keeps none.
    model_versions: int = 10


@dataclass(frozen=True)
class ProcessConfig:
    """The account a gateway started as root serves under (docs/deployment.md)."""

    # User to switch to once the listeners are bound; empty: stay as started.
    # Only used when started as root; the state files must be writable by it.
    user: str = ""
    # Group to switch to; empty: the user's login group.
    group: str = ""


@dataclass(frozen=True)
class ReputationConfig:
    """Source reputation (docs/reputation.md): decayed counts of what each
    client address, network and AS sent, and the REPUTATION_* check."""

    enabled: bool = True
    # CSV file of "prefix,asn,name" lines (announced prefix to AS); empty:
    # no AS level. A line that does not parse stops the start naming it.
    prefix_table: str = ""
    # Network of an address: this prefix length (IPv4 /24, IPv6 /64).
    ipv4_prefix: int = 24
    ipv6_prefix: int = 64
    # Counts lose half their weight every this many seconds.
    half_life: float = 86_400.0
    # A source is forgotten this many seconds after its last message.
    retention: float = 604_800.0
    # Seconds between writes of the counts to the store.
    flush_interval: float = 5.0
    # A source is judged from this many (decayed) messages on.
    min_messages: float = 5.0
    # REPUTATION_BAD_*: quarantined and refused share at or above this.
    bad_share: float = 0.8
    # REPUTATION_GOOD_IP: accepted share at or above this.
    good_share: float = 0.95
    # Our own and relay networks (CIDR): never counted, scored, reported or
    # exported. Allow-listed addresses (lists.allow) are never either.
    own_networks: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    # Seconds the check reuses a source's counts read from the store.
    cache_seconds: float = 10.0


@dataclass(frozen=True)
class ReportsConfig:
    """Abuse reports (``mailmoat report arf``, RFC 5965); docs/reputation.md."""

    # Reports are sent only when this is true (--dry-run always works).
    enabled: bool = False
    # File of "CIDR-or-AS address" lines: who takes reports for which source.
    contacts: str = ""
    # host:port of the mail server the reports are sent through.
    smarthost: str = ""
    # Our address: the reports' From and envelope sender.
    sender: str = "postmaster@localhost"
    # At most this many reports per minute, and per SMTP session to a contact.
    max_per_minute: int = 30
    batch_size: int = 20


@dataclass(frozen=True)
class ZoneConfig:
    """Our own DNSBL zone (``mailmoat zone export``); docs/reputation.md."""

    # Zone name (the bind format's origin).
    name: str = "bl.mailmoat.invalid"
    # Listed: at least min_bad decayed bad messages and a bad share at or
    # above bad_share.
    min_bad: float = 20.0
    bad_share: float = 0.9
    # Also list whole networks (/24, /64) that reach the thresholds.
    networks: bool = True
    # Seconds resolvers may cache an answer.
    ttl: int = 3600
    # A source leaves the zone this many seconds after its last bad message.
    expiry: float = 172_800.0
    # Addresses or networks (CIDR) never exported.
    allow: tuple[str, ...] = ()
    # TXT answer: {reason} and {url} are filled in.
    txt: str = "Listed by mailmoat: {reason}; {url}"
    # Lookup URL template in the TXT answer; {ip} is the listed address.
    lookup_url: str = "https://mailmoat.invalid/lookup?ip={ip}"


@dataclass(frozen=True)
class Config:
    smtp: SmtpConfig = field(default_factory=SmtpConfig)
    relay: RelayConfig = field(default_factory=RelayConfig)
    delivery: DeliveryConfig = field(default_factory=DeliveryConfig)
    actions: ActionsConfig = field(default_factory=ActionsConfig)
    protocol: ProtocolConfig = field(default_factory=ProtocolConfig)
    pregreet: PregreetConfig = field(default_factory=PregreetConfig)
    # Score overrides by symbol name: [scores] HELO_BARE_IP = 2.5
    scores: dict[str, float] = field(default_factory=dict)
    # Per-check runner settings by check name: [checks.helo] timeout = 2
    checks: dict[str, CheckSettings] = field(default_factory=dict)
    store: StoreConfig = field(default_factory=StoreConfig)
    quarantine: QuarantineConfig = field(default_factory=QuarantineConfig)
    log: LogConfig = field(default_factory=LogConfig)
    stats: StatsConfig = field(default_factory=StatsConfig)
    web: WebConfig = field(default_factory=WebConfig)
    dns: DnsConfig = field(default_factory=DnsConfig)
    dnsbl: DnsblConfig = field(default_factory=DnsblConfig)
    rdns: RdnsConfig = field(default_factory=RdnsConfig)
    greylist: GreylistConfig = field(default_factory=GreylistConfig)
    ratelimit: RatelimitConfig = field(default_factory=RatelimitConfig)
    lists: ListsConfig = field(default_factory=ListsConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    urlbl: UrlblConfig = field(default_factory=UrlblConfig)
    rules: RulesConfig = field(default_factory=RulesConfig)
    attachments: AttachmentsConfig = field(default_factory=AttachmentsConfig)
    bulk: BulkConfig = field(default_factory=BulkConfig)
    milter: MilterConfig = field(default_factory=MilterConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    process: ProcessConfig = field(default_factory=ProcessConfig)
    reputation: ReputationConfig = field(default_factory=ReputationConfig)
    reports: ReportsConfig = field(default_factory=ReportsConfig)
    zone: ZoneConfig = field(default_factory=ZoneConfig)
    source: str = "<embedded defaults>"

    def check(self, name: str) -> CheckSettings:
        return self.checks.get(name, _DEFAULT_CHECK_SETTINGS)

    @property
    def node(self) -> str:
        """This gateway's name in statistics and history (``[stats] node``)."""
        return self.stats.node or _host_name()
