"""Every rule source the ``[rules]`` config names, loaded into one rule set.

Contract: ``load_configured(config)`` loads, in this order (a later rule of
a name replaces an earlier one): the bundled TOML rules (``bundled``),
SpamAssassin's system rules (``sa_default``: sa-update's directory when it
holds rules, else ``/usr/share/spamassassin``, as SpamAssassin itself
chooses), the admin's SpamAssassin files and directories (``sa_paths``),
then the admin's TOML files (``files``). It returns the prepared
``RuleSet`` and a ``LoadReport``: the SpamAssassin load (skips by reason,
problems with ``file:line``), the TOML error lines, and the rules left out
because ``re`` could backtrack on them without end and no engine can bound
them. Helpers (``__...``) that no reported rule reads, even through
metas, are loaded but not evaluated (``RuleSet.unread``). The result is
kept per process for identical config and files, so building the checks
again (tests, a reload that changed nothing) is cheap, and on disk
(``setcache``: keyed by the config and the content of every rule file
read), so a start with unchanged rules does not translate them.

Failure mode: nothing raises; every problem is in the report (the caller
logs it, ``mailmoat rules --stats`` and ``config --check`` print it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from mailmoat.config import RulesConfig
from mailmoat.rules import engine, setcache
from mailmoat.rules.cf import Problem, cf_files
from mailmoat.rules.loading import bundled_text, order_metas, read_toml, rule_sources
from mailmoat.rules.matcher import RuleSet
from mailmoat.rules.model import Rule
from mailmoat.rules.sa import SaLoad, load_sa

PACKAGE_DIR = Path("/usr/share/spamassassin")
UPDATES_ROOT = Path("/var/lib/spamassassin")
UPDATES_CHANNEL = "updates_spamassassin_org"
UNBOUNDED = "backtracking risk, the engine cannot bound it"


@dataclass
class LoadReport:
    sa: SaLoad = field(default_factory=SaLoad)
    toml_errors: list[str] = field(default_factory=list)
    unbounded: list[Rule] = field(default_factory=list)
    system_paths: list[str] = field(default_factory=list)

    def problems(self) -> list[Problem]:
        """Everything worth an error line, SpamAssassin's and TOML's alike."""
        found = list(self.sa.problems)
        for line in self.toml_errors:
            where = line.split(": rule ")[0].split(": ")[0]
            found.append(Problem(where, "toml", line, True))
        for rule in self.unbounded:
            found.append(
                Problem(rule.source, UNBOUNDED, f"rule {rule.name}: {UNBOUNDED}", _admin(rule))
            )
        return found


def reported(rule: Rule) -> bool:
    """Whether a rule's hits are read outside the rule set: its symbol is
    added (the rules check skips the helpers, named ``__...``)."""
    return not rule.name.startswith("__")


def _admin(rule: Rule) -> bool:
    return not any(rule.source.startswith(str(p)) for p in (PACKAGE_DIR, UPDATES_ROOT))


def system_rule_paths() -> list[str]:
    """sa-update's newest rule directory when it holds ``.cf`` files, else the package's."""
    if UPDATES_ROOT.is_dir():
        versions = sorted(
            (p for p in UPDATES_ROOT.iterdir() if re.fullmatch(r"\d+\.\d+", p.name)),
            key=lambda p: float(p.name),
        )
        for version in reversed(versions):
            channel = version / UPDATES_CHANNEL
            if channel.is_dir() and any(channel.glob("*.cf")):
                return [str(channel)]
    return [str(PACKAGE_DIR)] if PACKAGE_DIR.is_dir() else []


_CACHE: dict[tuple[object, ...], tuple[RuleSet, LoadReport]] = {}


def _fingerprint(config: RulesConfig, paths: list[str]) -> tuple[object, ...]:
    stamps: list[tuple[str, int, int]] = []
    for path in [*paths, *config.files]:
        target = Path(path)
        for file in cf_files(target) if target.exists() else []:
            try:
                stat = file.stat()
            except OSError:
                continue
            stamps.append((str(file), stat.st_mtime_ns, stat.st_size))
    return (config, tuple(paths), tuple(stamps))


def load_configured(
    config: RulesConfig, use_engine: bool | None = None
) -> tuple[RuleSet, LoadReport]:
    system = system_rule_paths() if config.sa_default else []
    key = (*_fingerprint(config, [*system, *config.sa_paths]), use_engine)
    cached = _CACHE.get(key)
    if cached is None:
        entry_key = _entry_key(config, [*system, *config.sa_paths], use_engine)
        stored = setcache.load(entry_key)
        if isinstance(stored, tuple) and len(stored) == 2 and isinstance(stored[0], RuleSet):
            cached = stored
        else:
            cached = _load(config, system, use_engine)
            files_read = [*cached[1].sa.files, *config.files]
            setcache.store(entry_key, files_read, cached)
        if len(_CACHE) > 8:
            _CACHE.clear()
        _CACHE[key] = cached
    return cached


def _entry_key(config: RulesConfig, sa_paths: list[str], use_engine: bool | None) -> str:
    """The on-disk cache's key of a load (``setcache.key``)."""
    named: list[str] = []
    for path in sa_paths:
        target = Path(path)
        named.extend(str(f) for f in (cf_files(target) if target.exists() else [target]))
    named.extend(config.files)
    bundled = bundled_text() if config.bundled else ""
    with_engine = engine.available() if use_engine is None else use_engine and engine.available()
    return setcache.key(config, named, bundled, with_engine)


def _load(
    config: RulesConfig, system: list[str], use_engine: bool | None
) -> tuple[RuleSet, LoadReport]:
    report = LoadReport(system_paths=system)
    rules: dict[str, Rule] = {}
    read_toml(rule_sources(config.bundled, []), rules, report.toml_errors)
    sa_inputs = [(p, False) for p in system] + [(p, True) for p in config.sa_paths]
    if sa_inputs:
        report.sa = load_sa(sa_inputs)
        for name, rule in report.sa.rules.items():
            rules.pop(name, None)
            rules[name] = rule
    for path in config.files:
        if not Path(path).is_file():
            report.toml_errors.append(f"{path}: unreadable, file skipped")
    read_toml(rule_sources(False, config.files), rules, report.toml_errors)
    rule_set = RuleSet(
        order_metas(rules, report.toml_errors), use_engine=use_engine, reported=reported
    )
    report.unbounded = list(rule_set.unbounded)
    return rule_set, report
