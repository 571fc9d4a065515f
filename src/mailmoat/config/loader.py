"""Reading a TOML file into a validated ``Config``.

Contract: ``load_config(path)`` returns a fully populated ``Config``; with no
path the embedded defaults apply. Unknown sections or keys, wrong types and
bad values (``mailmoat.config.values``) raise one ``ConfigError`` whose
``problems`` are every problem found, one line each naming the file and the
dotted key, so a typo never silently falls back to a default. A path that is
a directory, unreadable or not UTF-8 is a ``ConfigError`` too.
"""

from __future__ import annotations

import math
import tomllib
import types
import typing
from dataclasses import MISSING, fields, is_dataclass
from pathlib import Path
from typing import Any, TypeVar

from mailmoat.config.sections import Config


class ConfigError(ValueError):
    """A configuration that cannot be used: ``problems`` holds one line per
    problem, each naming the place (file and dotted key)."""

    def __init__(self, *problems: str) -> None:
        super().__init__("\n".join(problems))
        self.problems: tuple[str, ...] = problems


T = TypeVar("T")


def load_config(path: str | Path | None = None) -> Config:
    """Read a TOML file (or nothing) into a validated ``Config``."""
    config, problems = read_config(path)
    if problems:
        raise ConfigError(*problems)
    return config


def read_config(path: str | Path | None) -> tuple[Config, list[str]]:
    """The config and every problem in it (a bad key keeps its default).
    ConfigError only when the file cannot be read as TOML at all."""
    if path is None:
        return Config(), []
    from mailmoat.config.values import value_problems

    source = str(path)
    raw = _read_toml(path, source)
    problems: list[str] = []
    config = _build(Config, {**raw, "source": source}, source, "", problems)
    problems.extend(f"{source}: {line}" for line in value_problems(config))
    return config, problems


def _read_toml(path: str | Path, source: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError as exc:
        raise ConfigError(f"{source}: no such file") from exc
    except IsADirectoryError as exc:
        raise ConfigError(f"{source}: is a directory, not a config file") from exc
    except OSError as exc:
        raise ConfigError(f"{source}: cannot be read: {exc.strerror or exc}") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source}: not UTF-8 (byte {exc.start}): TOML files are UTF-8") from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from exc


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


def _build(cls: type[T], data: Any, source: str, prefix: str, problems: list[str]) -> T:
    """``cls`` from a table; each problem is appended to ``problems`` (the
    key in question then keeps its default)."""
    if not isinstance(data, dict):
        problems.append(f"{source}: [{prefix}] must be a table")
        return cls()
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    where = f"{prefix}." if prefix else ""
    for name in sorted(set(data) - set(known)):
        problems.append(f"{source}: unknown key {where}{name}")
    values: dict[str, Any] = {}
    for name, value in data.items():
        if name not in known:
            continue
        try:
            values[name] = _coerce(hints[name], value, source, f"{where}{name}", problems)
        except ConfigError as exc:
            problems.extend(exc.problems)
    for name, spec in known.items():
        if name not in values and spec.default is MISSING and spec.default_factory is MISSING:
            problems.append(f"{source}: missing key {where}{name}")
            return cls()
    return cls(**values)


def _coerce(hint: Any, value: Any, source: str, key: str, problems: list[str]) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if is_dataclass(hint) and isinstance(hint, type):
        return _build(hint, value, source, key, problems)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        if value is None:
            return None
        return _coerce(options[0], value, source, key, problems)
    if origin is tuple:
        if not isinstance(value, list):
            raise ConfigError(f"{source}: {key} must be a list")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], item, source, f"{key}[]", problems) for item in value)
        if len(value) != len(args):
            raise ConfigError(f"{source}: {key} must be a list of {len(args)} items, not {value!r}")
        return tuple(
            _coerce(arg, item, source, f"{key}[{i}]", problems)
            for i, (arg, item) in enumerate(zip(args, value, strict=True))
        )
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{source}: {key} must be a list")
        return [_coerce(args[0], item, source, f"{key}[]", problems) for item in value]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: {key} must be a table")
        return {
            str(k): _coerce(args[1], v, source, f"{key}.{k}", problems) for k, v in value.items()
        }
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{source}: {key} must be a number, not {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{source}: {key} must be a finite number, not {value!r}")
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
