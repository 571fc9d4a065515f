"""``mailmoat rules --stats``: what the rules engine loaded and what it skipped.

Prints how many rules were loaded (by kind), which engine matches them, how
many were skipped by reason (``eval`` tests, untranslatable regexes by
reason, unknown directives, syntax errors, network tests...), the problems
of the admin's own files with ``file:line``, and with ``--verbose`` every
problem and the counts per file. Exit status: 1 when a file cannot be read
or the admin's own files (``[rules] files`` and ``sa_paths``) have a
problem; problems of the system rule files are reported and counted only.
"""

from __future__ import annotations

import argparse
from collections import Counter

from mailmoat.config import load_config
from mailmoat.rules import engine
from mailmoat.rules.sources import UNBOUNDED, LoadReport, load_configured


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="TOML config file (default: embedded defaults)")
    parser.add_argument("--stats", action="store_true", help="print the load statistics")
    parser.add_argument(
        "--verbose", dest="per_file", action="store_true", help="every problem, counts per file"
    )


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    rules, report = load_configured(config.rules)
    left_out = {rule.name for rule in report.unbounded}
    kinds = Counter(rule.kind for rule in rules if rule.name not in left_out)
    total = sum(kinds.values())
    print(f"rules loaded: {total} ({', '.join(f'{k} {n}' for k, n in kinds.most_common())})")
    from_sa = sum(1 for r in rules if ".cf:" in r.source)
    print(f"  of which SpamAssassin rules: {from_sa - len(left_out)}")
    unread = sum(1 for rule in rules.unread if rule.name not in left_out)
    print(f"  not evaluated, as nothing reads their hits (unused helpers): {unread}")
    sources = [*report.system_paths, *config.rules.sa_paths]
    print(f"SpamAssassin sources: {', '.join(sources) if sources else 'none'}")
    if engine.available():
        print(f"engine: hyperscan ({rules.engine_rules} rules prefiltered in one pass per text)")
    else:
        print("engine: pure Python (literal prefilter); hyperscan not available")
    skipped = report.sa.skipped + Counter({UNBOUNDED: len(report.unbounded)})
    skipped += Counter({"TOML error": len(report.toml_errors)})
    print(f"skipped: {sum(skipped.values())}")
    for reason, count in skipped.most_common():
        print(f"  {count:6d}  {reason}")
    ignored = report.sa.ignored
    print(f"directives read and not used: {sum(ignored.values())} ({len(ignored)} kinds)")
    failing = _print_problems(report, args.per_file)
    if args.per_file:
        print("per file:")
        for file, counts in sorted(report.sa.per_file.items()):
            shown = ", ".join(f"{reason} {n}" for reason, n in counts.most_common())
            print(f"  {file}: {shown}")
    return 1 if failing else 0


def _print_problems(report: LoadReport, every: bool) -> int:
    problems = report.problems()
    failing = [p for p in problems if p.failing]
    system = len(problems) - len(failing)
    for problem in problems if every else failing:
        print(f"{problem.where}: {problem.detail}")
    if system and not every:
        print(f"{system} problems in the system rule files (--verbose lists them)")
    return len(failing)
