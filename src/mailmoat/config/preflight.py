"""Everything a long-running command builds from its config, tried first.

Contract: ``runtime_problems(config)`` does what ``mailmoat serve`` (and
``milter``, ``policy``, ``scan``) does to build its runtime, short of
listening and opening the store: it looks up the ``[process]`` user
and group, loads the TLS certificate, reads the
list, rule and model files, refuses ``[scores]`` names that no check
declares and no loaded rule has, checks the store URL and the dashboard's
bind rule, and builds every check through the registry. It returns one line per
problem, each starting with the dotted key; it never raises for a config
problem. ``load_runtime_config(path)`` is ``load_config`` plus these
checks: the one validation path of ``mailmoat config --check`` and of every
command that serves (a ``ConfigError`` listing every problem).
"""

from __future__ import annotations

import logging
import os
import ssl
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from mailmoat.config.loader import ConfigError, read_config
from mailmoat.config.sections import Config
from mailmoat.process import account_problems


def load_runtime_config(path: str | Path | None) -> Config:
    """``load_config(path)`` and ``runtime_problems``; ConfigError lists them all."""
    config, problems = read_config(path)
    problems.extend(
        f"{config.source}: {line}" for line in runtime_problems(config, build=not problems)
    )
    if problems:
        raise ConfigError(*problems)
    return config


def runtime_problems(config: Config, *, build: bool = True) -> list[str]:
    """Problems found by trying the runtime; with ``build`` (the values
    being valid) the checks are built too."""
    problems: list[str] = []
    problems.extend(_tls_problems(config))
    problems.extend(_file_problems(config))
    problems.extend(_store_problems(config.store.url))
    problems.extend(_directory_problems(config))
    problems.extend(_web_problems(config))
    problems.extend(_symbol_problems(config))
    problems.extend(account_problems(config.process))
    if build and not problems:
        problems.extend(_build_problems(config))
    return problems


def _tls_problems(config: Config) -> list[str]:
    smtp = config.smtp
    if not smtp.tls_cert or not smtp.tls_key:
        return []
    for key, path in (("smtp.tls_cert", smtp.tls_cert), ("smtp.tls_key", smtp.tls_key)):
        problem = _readable(path)
        if problem:
            return [f"{key}: {problem}"]
    try:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(smtp.tls_cert, smtp.tls_key)
    except (ssl.SSLError, OSError, ValueError) as exc:
        return [f"smtp.tls_cert: certificate and key do not load: {exc}"]
    return []


def _readable(path: str) -> str:
    """What keeps ``path`` from being read as a file, or ""."""
    if not os.path.exists(path):
        return f"{path!r}: no such file"
    if os.path.isdir(path):
        return f"{path!r}: is a directory"
    try:
        with open(path, "rb") as handle:
            handle.read(1)
    except OSError as exc:
        return f"{path!r}: {exc.strerror or exc}"
    return ""


def _file_problems(config: Config) -> list[str]:
    problems: list[str] = []
    for key, paths in (
        ("lists.allow_files", config.lists.allow_files),
        ("lists.deny_files", config.lists.deny_files),
        ("rules.files", config.rules.files),
    ):
        for path in paths:
            problem = _readable(path)
            if problem:
                problems.append(f"{key}: {problem}")
    for spec in config.urlbl.local_lists:
        path = spec.partition("=")[2]
        path = path.rpartition("*")[0] if "*" in path else path
        problem = _readable(path)
        if problem:
            problems.append(f"urlbl.local_lists: {problem}")
    if config.classifier.model_path:
        problem = _readable(config.classifier.model_path)
        if problem:
            problems.append(f"classifier.model_path: {problem}")
    if not problems:
        problems.extend(_rule_problems(config))
    return problems


def _rule_problems(config: Config) -> list[str]:
    """The admin's rule files' problems (and any unreadable file), one
    ``rules.files: ...`` or ``rules.sa_paths: file:line: ...`` line each; the
    system rule files' problems are only counted (``mailmoat rules --stats``)."""
    from mailmoat.rules.sources import load_configured  # the rules stack only when checking

    _rules, report = load_configured(config.rules)
    lines = []
    for problem in report.problems():
        if not problem.failing:
            continue
        if problem.reason == "toml":
            lines.append(f"rules.files: {problem.detail}")
        else:
            lines.append(f"rules.sa_paths: {problem.where}: {problem.detail}")
    return lines


def _symbol_problems(config: Config) -> list[str]:
    """``[scores]`` names that nothing adds: no check declares them (exactly
    or by a family prefix such as ``DNSBL_``) and no loaded rule has them."""
    if not config.scores:
        return []
    from mailmoat.checks.catalog import known_symbol

    return [
        f"scores.{name}: unknown symbol: no check declares it and no loaded rule "
        "has that name (see mailmoat symbols)"
        for name in sorted(config.scores)
        if not known_symbol(name, config)
    ]


def _store_problems(url: str) -> list[str]:
    if url.startswith("sqlite:"):
        rest = url.removeprefix("sqlite://")
        if rest in (":memory:", "/:memory:"):
            return []
        path = Path(rest[1:] if rest.startswith("/") else rest)
        if path.is_dir():
            return [f"store.url: {str(path)!r} is a directory"]
        return []
    parts = urlsplit(url)
    try:
        _port = parts.port
    except ValueError as exc:
        return [f"store.url: {exc}"]
    query = dict(parse_qsl(parts.query))
    for name, kind in (("timeout", float), ("max_connections", int)):
        if name in query:
            try:
                kind(query[name])
            except ValueError:
                return [f"store.url: {name} must be a number, not {query[name]!r}"]
    return []


def _directory_problems(config: Config) -> list[str]:
    problems: list[str] = []
    for key, path in (
        ("delivery.maildir", config.delivery.maildir),
        ("quarantine.directory", config.quarantine.directory),
    ):
        if os.path.exists(path) and not os.path.isdir(path):
            problems.append(f"{key}: {path!r} exists and is not a directory")
    return problems


def _web_problems(config: Config) -> list[str]:
    if not config.web.enabled:
        return []
    from mailmoat.web.auth import check_bind

    try:
        check_bind(config.web)
    except ConfigError as exc:
        text = str(exc)
        return [text if text.startswith("web.") else f"web.listen: {text}"]
    return []


def _build_problems(config: Config) -> list[str]:
    """Build every check as the gateway does; what raises is a problem."""
    from mailmoat.checks.base import Services
    from mailmoat.checks.registry import build_checks
    from mailmoat.dns import resolver_from_config

    # Checks say at INFO what they leave out without a store: not news here.
    checks_log = logging.getLogger("mailmoat.checks")
    level = checks_log.level
    checks_log.setLevel(logging.WARNING)
    try:
        services = Services(config=config, resolver=resolver_from_config(config.dns))
        build_checks(services)
    except ConfigError as exc:
        return [str(line) for line in exc.problems]
    except (OSError, ValueError, LookupError, TypeError) as exc:
        return [f"checks: a check cannot be built: {type(exc).__name__}: {exc}"]
    finally:
        checks_log.setLevel(level)
    return []
