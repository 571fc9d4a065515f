"""``mailmoat symbols [--config FILE] [--json | --reference]``: every symbol.

Lists every symbol a check, the SMTP front, the runner or a loaded rule can
add (``mailmoat.checks.catalog``): its check, group, default score,
effective score (after ``[scores]`` of FILE) and description. Names made at
run time are shown as their family (``DNSBL_<SITE>``); "computed" marks a
score the check works out (a curve, a configured weight). ``--json`` prints
one JSON array of objects (``name``, ``check``, ``group``, ``default``,
``effective``, ``description``, ``kind``). ``--reference`` prints the
Markdown symbol reference of docs/symbols.md: the checks' symbols and the
bundled rules (SpamAssassin's rules depend on the installed package, so the
reference points to this command for them).
"""

from __future__ import annotations

import argparse
import json

from mailmoat.checks.catalog import Entry, entries, rule_entries, spec_entries
from mailmoat.checks.registry import all_specs
from mailmoat.config import RulesConfig, load_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="TOML config file (default: embedded defaults)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--json", action="store_true", help="one JSON array")
    group.add_argument("--reference", action="store_true", help="print the Markdown reference")


def _score(value: float | None) -> str:
    return "computed" if value is None else f"{value:g}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _table(rows: list[Entry]) -> list[str]:
    out = ["| symbol | group | default | meaning |", "|---|---|---|---|"]
    out.extend(
        f"| `{row.name}` | {row.group} | {_score(row.default)} | {_cell(row.description)} |"
        for row in rows
    )
    return out


def reference() -> str:
    """The Markdown reference: one table per check, then the bundled rules."""
    rows = spec_entries()
    out: list[str] = []
    for spec in all_specs():
        mine = [row for row in rows if row.check == spec.name]
        if not mine:
            continue
        stages = ", ".join(stage.value for stage in spec.stages)
        out.append(f"## {spec.name}\n")
        needs = f" Reads the results of: {', '.join(spec.requires)}." if spec.requires else ""
        out.append(f"{spec.summary} Stages: {stages}.{needs}\n")
        out.extend(_table(mine))
        out.append("")
    bundled = rule_entries(RulesConfig(bundled=True, sa_default=False))
    out.append("## rules (bundled)\n")
    out.append(
        "The rules of the bundled set (`rules.bundled`). SpamAssassin's stock rules "
        "(`rules.sa_default`) and the admin's rule files add their own symbols: "
        "`mailmoat symbols` lists them for the installed rules.\n"
    )
    out.extend(_table(list(bundled)))
    return "\n".join(out) + "\n"


def run(args: argparse.Namespace) -> int:
    if args.reference:
        print(reference(), end="")
        return 0
    config = load_config(args.config)
    rows = entries(config)
    if args.json:
        print(json.dumps([row.as_json() for row in rows], indent=1))
        return 0
    width = max(len(row.name) for row in rows)
    for row in rows:
        scores = f"{_score(row.default):>8} {_score(row.effective):>8}"
        print(f"{row.name:<{width}} {row.check:<12} {row.group:<14} {scores}  {row.description}")
    return 0
