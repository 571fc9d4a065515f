"""TOML configuration -> frozen dataclasses.

Contract: ``load_config(path)`` returns a fully populated ``Config``; with no
path the embedded defaults apply (accept mail for ``localhost``, deliver to
``var/maildir``). Every section is a frozen dataclass whose defaults are the
embedded defaults. Unknown sections or keys, wrong types and bad values raise
``ConfigError`` naming the file and the dotted key, so a typo never silently
falls back to a default.
"""

from __future__ import annotations

import tomllib
import types
import typing
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, TypeVar


class ConfigError(ValueError):
    """A configuration file that cannot be used, with the place named."""


@dataclass(frozen=True)
class SmtpConfig:
    listen: str = "127.0.0.1:2525"
    hostname: str = "localhost"
    banner: str = "mailmoat ESMTP"
    max_message_size: int = 26_214_400
    max_recipients: int = 100
    max_connections: int = 20_000
    # Command lines longer than this (RFC 5321: 512 with CRLF) get 500 5.5.2.
    max_command_length: int = 512
    # DATA lines longer than this (RFC 5322: 998 + CRLF) make the message be
    # refused with 554 5.6.0 at the end of DATA.
    max_line_length: int = 1000
    command_timeout: float = 300.0
    # "normalize": a bare LF in DATA is taken as a line end (and sent on as
    # CRLF); "reject": the message is refused with 554 5.5.2 (Postfix 3.9's
    # smtpd_forbid_bare_newline).
    bare_newline: str = "normalize"
    tls_cert: str = ""
    tls_key: str = ""
    # Seconds SIGTERM waits for transactions in flight before tempfailing them.
    shutdown_grace: float = 30.0


@dataclass(frozen=True)
class RelayConfig:
    domains: tuple[str, ...] = ("localhost",)
    # host:port of the mail server behind us; empty: deliver to the Maildir.
    upstream: str = ""
    connect_timeout: float = 10.0
    command_timeout: float = 60.0
    data_timeout: float = 120.0


@dataclass(frozen=True)
class DeliveryConfig:
    maildir: str = "var/maildir"


@dataclass(frozen=True)
class ActionsConfig:
    """Score thresholds, each "at or above". 0 or negative disables one."""

    reject: float = 15.0
    quarantine: float = 0.0
    soft_reject: float = 0.0
    add_header: float = 6.0
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
    enabled: bool = True
    timeout: float = 10.0
    # What a crashed or timed-out check means: "accept" (ignore it) or
    # "tempfail" (451 so the sender retries later).
    fail_mode: str = "accept"


@dataclass(frozen=True)
class StoreConfig:
    url: str = "sqlite:///var/mailmoat.db"
    # On store failure: "tempfail" (451) or "accept" (skip the stateful checks).
    fail_mode: str = "tempfail"


@dataclass(frozen=True)
class QuarantineConfig:
    # Quarantined messages are files (fsynced before the client hears 250).
    directory: str = "var/quarantine"
    retention_days: int = 30


@dataclass(frozen=True)
class LogConfig:
    level: str = "INFO"


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
    source: str = "<embedded defaults>"

    def check(self, name: str) -> CheckSettings:
        return self.checks.get(name, CheckSettings())


T = TypeVar("T")

_VALID_CHOICES: dict[str, tuple[str, ...]] = {
    "smtp.bare_newline": ("normalize", "reject"),
    "store.fail_mode": ("tempfail", "accept"),
    "protocol.non_smtp_command": ("ignore", "enforce", "drop"),
    "protocol.bare_newline": ("ignore", "enforce", "drop"),
    "protocol.pipelining": ("ignore", "enforce", "drop"),
    "pregreet.action": ("ignore", "enforce", "drop"),
}


def load_config(path: str | Path | None = None) -> Config:
    """Read a TOML file (or nothing) into a validated ``Config``."""
    if path is None:
        return Config()
    source = str(path)
    try:
        with open(path, "rb") as handle:
            raw = tomllib.load(handle)
    except FileNotFoundError as exc:
        raise ConfigError(f"{source}: no such file") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from exc
    config = _build(Config, {**raw, "source": source}, source, "")
    _validate(config)
    return config


def _validate(config: Config) -> None:
    for dotted, choices in _VALID_CHOICES.items():
        section, key = dotted.split(".")
        value = getattr(getattr(config, section), key)
        if value not in choices:
            raise ConfigError(f"{config.source}: {dotted} must be one of {choices}, not {value!r}")
    for name, settings in config.checks.items():
        if settings.fail_mode not in ("accept", "tempfail"):
            raise ConfigError(
                f"{config.source}: checks.{name}.fail_mode must be 'accept' or 'tempfail'"
            )
        if settings.timeout <= 0:
            raise ConfigError(f"{config.source}: checks.{name}.timeout must be positive")
    if config.smtp.max_message_size <= 0:
        raise ConfigError(f"{config.source}: smtp.max_message_size must be positive")
    if bool(config.smtp.tls_cert) != bool(config.smtp.tls_key):
        raise ConfigError(f"{config.source}: smtp.tls_cert and smtp.tls_key go together")
    for key in ("listen",):
        parse_hostport(getattr(config.smtp, key), where=f"{config.source}: smtp.{key}")
    if config.relay.upstream:
        parse_hostport(config.relay.upstream, where=f"{config.source}: relay.upstream")


def parse_hostport(
    value: str, *, where: str = "address", default_port: int = 25
) -> tuple[str, int]:
    """Split ``host:port`` / ``[v6]:port`` / ``host``; ConfigError if malformed."""
    text = value.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host, port_text = text, ""
    if not host:
        raise ConfigError(f"{where}: no host in {value!r}")
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"{where}: bad port in {value!r}")
    return host, int(port_text)


def _build(cls: type[T], data: Any, source: str, prefix: str) -> T:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: [{prefix}] must be a table")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(known))
    if unknown:
        where = f"{prefix}." if prefix else ""
        raise ConfigError(f"{source}: unknown key {where}{unknown[0]}")
    values: dict[str, Any] = {}
    for name, value in data.items():
        values[name] = _coerce(hints[name], value, source, f"{prefix}.{name}".lstrip("."))
    for name, spec in known.items():
        if name not in values and spec.default is MISSING and spec.default_factory is MISSING:
            dotted = f"{prefix}.{name}".lstrip(".")
            raise ConfigError(f"{source}: missing key {dotted}")
    return cls(**values)


def _coerce(hint: Any, value: Any, source: str, key: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if is_dataclass(hint) and isinstance(hint, type):
        return _build(hint, value, source, key)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        if value is None:
            return None
        return _coerce(options[0], value, source, key)
    if origin is tuple:
        if not isinstance(value, list):
            raise ConfigError(f"{source}: {key} must be a list")
        return tuple(_coerce(args[0], item, source, f"{key}[]") for item in value)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{source}: {key} must be a list")
        return [_coerce(args[0], item, source, f"{key}[]") for item in value]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: {key} must be a table")
        return {str(k): _coerce(args[1], v, source, f"{key}.{k}") for k, v in value.items()}
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{source}: {key} must be a number, not {value!r}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{source}: {key} must be an integer, not {value!r}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{source}: {key} must be true or false, not {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{source}: {key} must be a string, not {value!r}")
        return value
    if hint is Any:
        return value
    raise ConfigError(f"{source}: {key}: unsupported setting type {hint!r}")
