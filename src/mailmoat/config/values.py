"""Value checks for a typed ``Config``: ranges, choices, formats, orders.

Contract: ``value_problems(config)`` returns one line per bad value, each
starting with the dotted key (``"stats.flush_interval: must be > 0, not 0.0"``);
an empty list means every value is usable. It is pure and cheap (no file,
socket or store is touched; ``mailmoat.config.preflight`` does those), so
``load_config`` runs it on every load. Every key has a rule here: a value
that would spin a core, delete data, refuse every client or switch a check
off is refused rather than accepted.
"""

from __future__ import annotations

import ipaddress
import itertools
import re
from collections.abc import Callable, Iterable
from dataclasses import fields, is_dataclass
from typing import Any

from mailmoat.config.sections import Config

# A rule returns what is wrong with a value, or None.
Rule = Callable[[Any], str | None]

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_LABEL = r"[A-Za-z0-9_\-\u0080-\U0010ffff]+"
_DOMAIN = re.compile(rf"^\.?(?:{_LABEL}\.)*{_LABEL}\.?$")
_SYMBOL = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,99}$")
_CHECK_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def above(low: float) -> Rule:
    return lambda v: None if v > low else f"must be > {low:g}, not {v!r}"


def at_least(low: float) -> Rule:
    return lambda v: None if v >= low else f"must be >= {low:g}, not {v!r}"


def between(low: float, high: float) -> Rule:
    return lambda v: None if low <= v <= high else f"must be {low:g}..{high:g}, not {v!r}"


def choice(*options: str) -> Rule:
    return lambda v: None if v in options else f"must be one of {options}, not {v!r}"


def text(*, empty: bool = True, spaces: bool = True) -> Rule:
    def rule(value: str) -> str | None:
        if not empty and not value.strip():
            return "must not be empty"
        if _CONTROL.search(value):
            return f"must not hold control characters: {value!r}"
        if not spaces and any(c.isspace() for c in value):
            return f"must not hold spaces: {value!r}"
        return None

    return rule


def hostport(*, empty: bool = False) -> Rule:
    def rule(value: str) -> str | None:
        from mailmoat.config.loader import ConfigError, parse_hostport

        if empty and not value:
            return None
        if _CONTROL.search(value) or " " in value.strip():
            return f"not host:port: {value!r}"
        try:
            parse_hostport(value)
        except ConfigError as exc:
            return str(exc).removeprefix("address: ")
        return None

    return rule


def each(rule: Rule) -> Rule:
    def check_all(values: Iterable[Any]) -> str | None:
        for item in values:
            problem = rule(item)
            if problem is not None:
                return problem
        return None

    return check_all


def cidr(value: str) -> str | None:
    try:
        ipaddress.ip_network(value.strip(), strict=False)
    except ValueError as exc:
        return f"not an address or CIDR network: {exc}"
    return None


def mailbox(value: str) -> str | None:
    local, at, host = value.rpartition("@")
    ok = at and local and _DOMAIN.match(host) and not _CONTROL.search(value) and " " not in value
    return None if ok else f"not a mail address: {value!r}"


def domain(value: str) -> str | None:
    return None if _DOMAIN.match(value) else f"not a domain name: {value!r}"


def regex(value: str) -> str | None:
    try:
        re.compile(value)
    except re.error as exc:
        return f"bad regular expression {value!r}: {exc}"
    return None


def extension(value: str) -> str | None:
    ok = value and value == value.lower() and not value.startswith(".") and value.isprintable()
    return None if ok and " " not in value else f"an extension is lower case, no dot: {value!r}"


def list_entry(value: str) -> str | None:
    from mailmoat.checks.lists import Entries

    try:
        Entries().add(value)
    except ValueError as exc:
        return f"not a list entry {value!r}: {exc}"
    return None


def dnsbl_site(value: str) -> str | None:
    from mailmoat.checks.dnsbl import parse_site

    try:
        parse_site(value)
    except ValueError as exc:
        return str(exc)
    return None


def urlbl_zone(value: str) -> str | None:
    from mailmoat.checks.urlbl import parse_zone

    try:
        parse_zone(value)
    except ValueError as exc:
        return str(exc)
    return None


def local_list(value: str) -> str | None:
    name, eq, path = value.partition("=")
    ok = eq and re.fullmatch(r"[A-Za-z0-9_]+", name) and path.strip()
    return None if ok else f"expected NAME=path[*weight]: {value!r}"


def store_url(value: str) -> str | None:
    if value.startswith("sqlite:"):
        rest = value.removeprefix("sqlite://")
        if not value.startswith("sqlite://") or not rest.strip("/"):
            return f"expected sqlite:///path.db: {value!r}"
        return None
    if value.startswith(("redis://", "rediss://", "unix://")):
        return None
    return f"unknown store scheme in {value!r}: use sqlite:///path or redis://host:port/db"


def log_level(value: str) -> str | None:
    return None if value.upper() in LOG_LEVELS else f"must be one of {LOG_LEVELS}, not {value!r}"


def curve(direction: str) -> Rule:
    def rule(points: tuple[tuple[float, float], ...]) -> str | None:
        if not points:
            return "needs at least one (probability, score) point"
        probabilities = [p for p, _score in points]
        if any(not 0.0 <= p <= 1.0 for p in probabilities):
            return f"probabilities must be in 0..1: {probabilities}"
        pairs = list(itertools.pairwise(probabilities))
        if direction == "rising" and any(b <= a for a, b in pairs):
            return f"probabilities must rise: {probabilities}"
        if direction == "falling" and any(b >= a for a, b in pairs):
            return f"probabilities must fall: {probabilities}"
        return None

    return rule


_POSITIVE = above(0)
_NOT_NEGATIVE = at_least(0)
_ACTION = choice("ignore", "enforce", "drop")
_DMARC_ACTION = choice("reject", "quarantine", "score")
_COUNT = at_least(1)

RULES: dict[str, tuple[Rule, ...]] = {
    "smtp.listen": (hostport(),),
    "smtp.hostname": (text(empty=False, spaces=False),),
    "smtp.banner": (text(),),
    "smtp.max_message_size": (_POSITIVE,),
    "smtp.max_recipients": (_COUNT,),
    "smtp.max_connections": (_COUNT,),
    "smtp.workers": (between(0, 1024),),
    "smtp.max_command_length": (at_least(512),),
    "smtp.max_line_length": (_NOT_NEGATIVE,),
    "smtp.command_timeout": (_POSITIVE,),
    "smtp.bare_newline": (choice("normalize", "reject"),),
    "smtp.tls_cert": (text(),),
    "smtp.tls_key": (text(),),
    "smtp.xforward_hosts": (each(cidr),),
    "smtp.shutdown_grace": (_NOT_NEGATIVE,),
    "smtp.recipient_overshoot_limit": (_COUNT,),
    "smtp.max_inflight_bytes": (_NOT_NEGATIVE,),
    "relay.domains": (each(domain),),
    "relay.upstream": (hostport(empty=True),),
    "relay.connect_timeout": (_POSITIVE,),
    "relay.command_timeout": (_POSITIVE,),
    "relay.data_timeout": (_POSITIVE,),
    "delivery.maildir": (text(empty=False),),
    "actions.reject": (),
    "actions.quarantine": (),
    "actions.soft_reject": (),
    "actions.add_header": (),
    "actions.greylist": (),
    "actions.reject_before_data": (),
    "protocol.non_smtp_command": (_ACTION,),
    "protocol.bare_newline": (_ACTION,),
    "protocol.pipelining": (_ACTION,),
    "protocol.hard_error_limit": (_COUNT,),
    "protocol.strict_8bit": (),
    "pregreet.delay": (between(0, 300),),
    "pregreet.action": (_ACTION,),
    "pregreet.pass_ttl": (_NOT_NEGATIVE,),
    "store.url": (store_url,),
    "store.fail_mode": (choice("tempfail", "accept"),),
    "quarantine.directory": (text(empty=False),),
    "quarantine.retention_days": (_COUNT,),
    "log.level": (log_level,),
    "log.target": (choice("stderr", "syslog", "journald"),),
    "log.facility": (choice("mail", "daemon", "user", *(f"local{n}" for n in range(8))),),
    "log.socket": (text(spaces=False),),
    "stats.enabled": (),
    "stats.node": (text(spaces=False),),
    "stats.flush_interval": (at_least(0.1),),
    "stats.minute_retention_hours": (_COUNT,),
    "stats.hour_retention_days": (_COUNT,),
    "stats.day_retention_days": (_COUNT,),
    "stats.history_days": (_COUNT,),
    "stats.history_max_per_hour": (_COUNT,),
    "stats.step_threshold": (_POSITIVE,),
    "stats.step_min_baseline": (_NOT_NEGATIVE,),
    "stats.source_silence": (at_least(1),),
    "stats.source_min_spam": (_POSITIVE,),
    "web.enabled": (),
    "web.listen": (hostport(),),
    "web.password_hash": (text(spaces=False),),
    "web.secret_key": (text(),),
    "web.session_hours": (_POSITIVE,),
    "web.allowed_hosts": (each(text(empty=False, spaces=False)),),
    "web.max_login_failures": (_COUNT,),
    "web.learn_token": (
        text(spaces=False),
        lambda v: None if not v or len(v) >= 16 else "must be empty or at least 16 characters",
    ),
    "dns.nameserver": (hostport(empty=True),),
    "dns.timeout": (_POSITIVE,),
    "dns.min_ttl": (_NOT_NEGATIVE,),
    "dns.max_ttl": (_NOT_NEGATIVE,),
    "dns.cache_size": (_NOT_NEGATIVE,),
    "dnsbl.sites": (each(dnsbl_site),),
    "dnsbl.threshold": (_POSITIVE,),
    "rdns.skip_networks": (each(cidr),),
    "rdns.dynamic_patterns": (each(regex),),
    "greylist.enabled": (),
    "greylist.mode": (choice("score", "all"),),
    "greylist.delay": (_NOT_NEGATIVE,),
    "greylist.retry_window": (_POSITIVE,),
    "greylist.max_age": (_POSITIVE,),
    "greylist.auto_allowlist": (_NOT_NEGATIVE,),
    "greylist.ipv4_prefix": (between(0, 32),),
    "greylist.ipv6_prefix": (between(0, 128),),
    "ratelimit.exempt": (each(cidr),),
    "ratelimit.window": (_POSITIVE,),
    "ratelimit.connections_per_ip": (_NOT_NEGATIVE,),
    "ratelimit.connections_per_net": (_NOT_NEGATIVE,),
    "ratelimit.concurrent_per_ip": (_NOT_NEGATIVE,),
    "ratelimit.concurrent_per_net": (_NOT_NEGATIVE,),
    "ratelimit.messages_per_ip": (_NOT_NEGATIVE,),
    "ratelimit.messages_per_sender": (_NOT_NEGATIVE,),
    "ratelimit.recipients_per_ip": (_NOT_NEGATIVE,),
    "ratelimit.recipients_per_sender": (_NOT_NEGATIVE,),
    "ratelimit.ipv4_prefix": (between(0, 32),),
    "ratelimit.ipv6_prefix": (between(0, 128),),
    "ratelimit.slot_bucket": (_POSITIVE,),
    "lists.allow": (each(list_entry),),
    "lists.deny": (each(list_entry),),
    "lists.allow_files": (each(text(empty=False)),),
    "lists.deny_files": (each(text(empty=False)),),
    "lists.reload_interval": (_POSITIVE,),
    "auth.authserv_id": (text(spaces=False),),
    "auth.dns_timeout": (_POSITIVE,),
    "auth.spf_helo": (),
    "auth.dkim_max_signatures": (_NOT_NEGATIVE,),
    "auth.dkim_min_key_bits": (between(0, 16384),),
    "auth.dmarc_reject_action": (_DMARC_ACTION,),
    "auth.dmarc_quarantine_action": (_DMARC_ACTION,),
    "urlbl.zones": (each(urlbl_zone),),
    "urlbl.local_lists": (each(local_list),),
    "urlbl.dns_timeout": (_POSITIVE,),
    "urlbl.max_domains": (_NOT_NEGATIVE,),
    "urlbl.skip_domains": (each(domain),),
    "rules.files": (each(text(empty=False)),),
    "rules.bundled": (),
    "rules.sa_default": (),
    "rules.sa_paths": (each(text(empty=False)),),
    "attachments.bad_extensions": (each(extension),),
    "attachments.max_archive_entries": (_COUNT,),
    "attachments.max_compression_ratio": (_COUNT,),
    "attachments.max_archive_total": (_COUNT,),
    "bulk.window": (_POSITIVE,),
    "bulk.low": (_COUNT,),
    "bulk.medium": (_COUNT,),
    "bulk.high": (_COUNT,),
    "bulk.min_words": (_NOT_NEGATIVE,),
    "bulk.cache_seconds": (_NOT_NEGATIVE,),
    "milter.listen": (hostport(),),
    "milter.timeout": (_POSITIVE,),
    "milter.max_headers": (_COUNT,),
    "milter.max_header_bytes": (at_least(1024),),
    "milter.max_connections": (_COUNT,),
    "policy.listen": (hostport(),),
    "policy.defer_if_permit": (),
    "policy.timeout": (_POSITIVE,),
    "cluster.model_reload_interval": (_NOT_NEGATIVE,),
    "classifier.model_path": (text(),),
    "classifier.hash_bits": (between(4, 32),),
    "classifier.spam_threshold": (between(0, 1),),
    "classifier.ham_threshold": (between(0, 1),),
    "classifier.spam_curve": (curve("rising"),),
    "classifier.ham_curve": (curve("falling"),),
    "classifier.autolearn": (),
    "classifier.autolearn_spam_threshold": (_POSITIVE,),
    "classifier.autolearn_min_sender_points": (_NOT_NEGATIVE,),
    "classifier.autolearn_min_content_points": (_NOT_NEGATIVE,),
    "classifier.autolearn_ham_threshold": (),
    "classifier.autolearn_flush_interval": (at_least(1),),
    "classifier.autolearn_max_pending": (_COUNT,),
    "classifier.model_versions": (between(0, 1000),),
    "milter.quarantine": (choice("hold", "mailmoat"),),
    "quarantine.keep_accepted_days": (between(0, 3650),),
    "process.user": (text(spaces=False),),
    "process.group": (text(spaces=False),),
    "reputation.enabled": (),
    "reputation.prefix_table": (text(),),
    "reputation.ipv4_prefix": (between(8, 32),),
    "reputation.ipv6_prefix": (between(16, 128),),
    "reputation.half_life": (at_least(60),),
    "reputation.retention": (at_least(3600),),
    "reputation.flush_interval": (at_least(0.1),),
    "reputation.min_messages": (_POSITIVE,),
    "reputation.bad_share": (between(0.01, 1),),
    "reputation.good_share": (between(0.01, 1),),
    "reputation.own_networks": (each(cidr),),
    "reputation.cache_seconds": (_NOT_NEGATIVE,),
    "reports.enabled": (),
    "reports.contacts": (text(),),
    "reports.smarthost": (hostport(empty=True),),
    "reports.sender": (mailbox,),
    "reports.max_per_minute": (_COUNT,),
    "reports.batch_size": (_COUNT,),
    "zone.name": (domain,),
    "zone.min_bad": (_POSITIVE,),
    "zone.bad_share": (between(0.01, 1),),
    "zone.networks": (),
    "zone.ttl": (between(1, 604_800),),
    "zone.expiry": (at_least(60),),
    "zone.allow": (each(cidr),),
    "zone.txt": (text(empty=False),),
    "zone.lookup_url": (text(spaces=False),),
}


def value_problems(config: Config) -> list[str]:
    """Every bad value in ``config``, one ``"key: what is wrong"`` line each."""
    problems: list[str] = []
    for section in fields(config):
        settings = getattr(config, section.name)
        if not is_dataclass(settings):
            continue
        for item in fields(settings):
            key = f"{section.name}.{item.name}"
            for rule in RULES.get(key, ()):
                problem = rule(getattr(settings, item.name))
                if problem is not None:
                    problems.append(f"{key}: {problem}")
                    break
    problems.extend(_score_problems(config))
    problems.extend(_check_problems(config))
    problems.extend(_order_problems(config))
    return problems


def _score_problems(config: Config) -> list[str]:
    return [
        f"scores.{name}: not a symbol name"
        for name in sorted(config.scores)
        if not _SYMBOL.match(name)
    ]


def _check_problems(config: Config) -> list[str]:
    if not config.checks:
        return []
    from mailmoat.checks.registry import check_names

    known = check_names()
    problems: list[str] = []
    for name, settings in sorted(config.checks.items()):
        if name not in known:
            listed = ", ".join(sorted(known))
            problems.append(f"checks.{name}: no such check (known: {listed})")
        if settings.timeout <= 0:
            problems.append(f"checks.{name}.timeout: must be > 0, not {settings.timeout!r}")
        if settings.fail_mode not in ("accept", "tempfail"):
            problems.append(f"checks.{name}.fail_mode: must be 'accept' or 'tempfail'")
    return problems


def _order_problems(config: Config) -> list[str]:
    problems: list[str] = []
    actions = config.actions
    if actions.reject > 0:
        for name in ("quarantine", "soft_reject", "add_header", "greylist"):
            value = getattr(actions, name)
            if value >= actions.reject:
                problems.append(
                    f"actions.{name}: {value:g} must be below actions.reject ({actions.reject:g})"
                    " (0 disables it)"
                )
    classifier = config.classifier
    if actions.add_header > 0 and classifier.autolearn_ham_threshold >= actions.add_header:
        problems.append(
            f"classifier.autolearn_ham_threshold: {classifier.autolearn_ham_threshold:g} must be "
            f"below actions.add_header ({actions.add_header:g}): tagged mail is never ham"
        )
    if 0 < actions.quarantine <= actions.add_header:
        problems.append(
            f"actions.add_header: {actions.add_header:g} must be below actions.quarantine "
            f"({actions.quarantine:g}) (0 disables it)"
        )
    if bool(config.smtp.tls_cert) != bool(config.smtp.tls_key):
        problems.append("smtp.tls_key: smtp.tls_cert and smtp.tls_key go together")
    if config.dns.max_ttl < config.dns.min_ttl:
        problems.append("dns.max_ttl: must be >= dns.min_ttl")
    bulk = config.bulk
    if not bulk.low <= bulk.medium <= bulk.high:
        problems.append("bulk.medium: bulk.low <= bulk.medium <= bulk.high must hold")
    greylist = config.greylist
    if greylist.retry_window <= greylist.delay:
        problems.append("greylist.retry_window: must be longer than greylist.delay")
    if greylist.max_age < greylist.retry_window:
        problems.append("greylist.max_age: must be >= greylist.retry_window")
    classifier = config.classifier
    if classifier.ham_threshold >= classifier.spam_threshold:
        problems.append("classifier.ham_threshold: must be below classifier.spam_threshold")
    return problems
