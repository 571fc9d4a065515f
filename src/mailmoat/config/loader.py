"""Reading a TOML file into a validated ``Config``.

Contract: ``load_config(path)`` returns a fully populated ``Config``; with no
path the embedded defaults apply. Unknown sections or keys, wrong types and
bad values raise ``ConfigError`` naming the file and the dotted key, so a
typo never silently falls back to a default.
"""

from __future__ import annotations

import ipaddress
import tomllib
import types
import typing
from dataclasses import MISSING, fields, is_dataclass
from pathlib import Path
from typing import Any, TypeVar

from mailmoat.config.sections import Config


class ConfigError(ValueError):
    """A configuration file that cannot be used, with the place named."""


T = TypeVar("T")

_VALID_CHOICES: dict[str, tuple[str, ...]] = {
    "smtp.bare_newline": ("normalize", "reject"),
    "store.fail_mode": ("tempfail", "accept"),
    "protocol.non_smtp_command": ("ignore", "enforce", "drop"),
    "protocol.bare_newline": ("ignore", "enforce", "drop"),
    "protocol.pipelining": ("ignore", "enforce", "drop"),
    "pregreet.action": ("ignore", "enforce", "drop"),
    "greylist.mode": ("score", "all"),
    "auth.dmarc_reject_action": ("reject", "quarantine", "score"),
    "auth.dmarc_quarantine_action": ("reject", "quarantine", "score"),
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
    for entry in config.smtp.xforward_hosts:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError as exc:
            raise ConfigError(f"{config.source}: smtp.xforward_hosts: {exc}") from exc
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
    # Port 0 asks the kernel for a free port (tests, benchmarks).
    if not port_text.isdigit() or not 0 <= int(port_text) < 65536:
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
