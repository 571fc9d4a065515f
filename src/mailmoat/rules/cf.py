"""SpamAssassin rule files (``.cf``) read into directives, conditionals applied.

Contract: ``read_cf(paths)`` reads files and directories in SpamAssassin's
order (each directory's ``*.cf`` files lexically by name, the paths in the
order given) and returns a ``CfRead``: the directive lines that survive
``ifplugin``/``if``/``else``/``endif`` (each with ``file:line``), and the
problems found. Files are read as bytes and seen as Latin-1 (rules are
byte patterns). Comments start at an unescaped ``#``; ``\\#`` is ``#``.
``include FILE`` reads FILE relative to the including file (depth 5 at
most). Conditions: ``ifplugin X`` is true for the plugins in
``RUNNABLE_PLUGINS`` (those whose rules this engine runs); ``if`` takes
``version`` (SpamAssassin 4.0.1), ``plugin(X)``, ``can(X)`` (true only for
``HARMLESS_FEATURES``), numbers, comparisons, ``!``, ``&&``, ``||`` and
parentheses; anything else in an ``if`` is false (and reported).

Failure mode: an unreadable file or an unbalanced ``endif`` is a problem
(``Problem``) with file and line; the rest of the input is still read.
Nothing here raises.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

SA_VERSION = 4.000001
MAX_INCLUDE_DEPTH = 5
RUNNABLE_PLUGINS = frozenset(
    {
        "Mail::SpamAssassin::Plugin::ReplaceTags",
        "Mail::SpamAssassin::Plugin::Check",
        # their everyday evals are native (rules/evals.py)
        "Mail::SpamAssassin::Plugin::RelayEval",
        "Mail::SpamAssassin::Plugin::MIMEEval",
        "Mail::SpamAssassin::Plugin::HTMLEval",
        "Mail::SpamAssassin::Plugin::VBounce",
    }
)
HARMLESS_FEATURES = frozenset(
    {
        "Mail::SpamAssassin::Conf::feature_bug6558_free",
        "Mail::SpamAssassin::Conf::perl_min_version_5010000",
        "Mail::SpamAssassin::Conf::feature_welcomelist_blocklist",
        "Mail::SpamAssassin::Conf::feature_yesno_takes_args",
    }
)
_RULE_KINDS = frozenset({"header", "body", "rawbody", "uri", "full", "meta", "mimeheader"})
_COMMENT = re.compile(r"(?<!\\)#.*")
_IF_TOKEN = re.compile(
    r"\s*(?:(version)|(plugin|can)\s*\(\s*([\w:]+)\s*\)|(\d+(?:\.\d+)?)"
    r"|(>=|<=|==|!=|>|<|&&|\|\||!|\(|\)))"
)


@dataclass(frozen=True, slots=True)
class Directive:
    name: str
    args: str
    where: str  # "file:line"
    admin: bool  # from the admin's own files (their problems fail --stats)


@dataclass(frozen=True, slots=True)
class Problem:
    where: str
    reason: str  # the key it is counted by
    detail: str
    admin: bool
    fatal: bool = False  # an unreadable file

    @property
    def failing(self) -> bool:
        """Whether it fails a check: a problem in the admin's own files, or
        an unreadable file (the system files' problems are only counted)."""
        return self.admin or self.fatal


@dataclass
class CfRead:
    directives: list[Directive] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    # Rule definitions inside a false ifplugin/if, by the condition that was false.
    inactive: Counter[str] = field(default_factory=Counter)


def cf_files(path: Path) -> list[Path]:
    """The ``.cf`` files of a directory (lexical by name), or the file itself."""
    if path.is_dir():
        return sorted((p for p in path.iterdir() if p.suffix == ".cf"), key=lambda p: p.name)
    return [path]


def read_cf(paths: Iterable[tuple[str, bool]]) -> CfRead:
    """Directives from ``(path, admin)`` pairs, in load order."""
    result = CfRead()
    for path, admin in paths:
        target = Path(path)
        if not target.exists():
            result.problems.append(
                Problem(path, "unreadable file", "no such file or directory", admin, True)
            )
            continue
        for file in cf_files(target):
            _read_file(file, admin, result, 0)
    return result


def _read_file(file: Path, admin: bool, result: CfRead, depth: int) -> None:
    try:
        data = file.read_bytes()
    except OSError as exc:
        result.problems.append(
            Problem(str(file), "unreadable file", exc.strerror or str(exc), admin, True)
        )
        return
    result.files.append(str(file))
    stack: list[tuple[bool, bool]] = []  # (this block's condition, all enclosing true)
    labels: list[str] = []  # what each open block tests
    active = True
    for number, raw_line in enumerate(data.decode("latin-1").split("\n"), 1):
        line = _COMMENT.sub("", raw_line).replace("\\#", "#").strip()
        if not line:
            continue
        where = f"{file}:{number}"
        words = line.split(None, 1)
        name, args = words[0].lower(), words[1] if len(words) > 1 else ""
        if name in ("ifplugin", "if"):
            value = (
                args.split()[0] in RUNNABLE_PLUGINS
                if name == "ifplugin" and args
                else _condition(args, where, admin, result)
            )
            stack.append((value, active))
            labels.append(
                f"plugin {args.split()[0].rpartition('::')[2]} not run"
                if name == "ifplugin" and args
                else "if condition false"
            )
            active = active and value
        elif name == "else":
            if not stack:
                result.problems.append(Problem(where, "syntax error", "else without if", admin))
                continue
            value, outer = stack[-1]
            stack[-1] = (not value, outer)
            labels[-1] = labels[-1].replace(" not run", " run (else)") if value else labels[-1]
            active = outer and not value
        elif name == "endif":
            if not stack:
                result.problems.append(Problem(where, "syntax error", "endif without if", admin))
                continue
            active = stack.pop()[1]
            labels.pop()
        elif not active:
            if name in _RULE_KINDS:
                false = [
                    label for (value, _), label in zip(stack, labels, strict=True) if not value
                ]
                result.inactive[false[-1] if false else "if condition false"] += 1
            continue
        elif name == "include":
            target = (file.parent / args).resolve()
            if depth >= MAX_INCLUDE_DEPTH:
                result.problems.append(Problem(where, "syntax error", "includes too deep", admin))
            else:
                _read_file(target, admin, result, depth + 1)
        else:
            result.directives.append(Directive(name, args, where, admin))
    if stack:
        result.problems.append(
            Problem(f"{file}:{number if data else 0}", "syntax error", "if without endif", admin)
        )


def _condition(text: str, where: str, admin: bool, result: CfRead) -> bool:
    try:
        return bool(evaluate_condition(text))
    except ValueError as exc:
        result.problems.append(Problem(where, "syntax error", f"if: {exc}", admin))
        return False


def evaluate_condition(text: str) -> float:
    """The value of an ``if`` condition (``ValueError`` when it is not one)."""
    tokens: list[tuple[str, object]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = _IF_TOKEN.match(text, pos)
        if match is None:
            raise ValueError(f"unexpected {text[pos:].strip()[:30]!r}")
        if match.group(1):
            tokens.append(("num", SA_VERSION))
        elif match.group(2) == "plugin":
            tokens.append(("num", float(match.group(3) in RUNNABLE_PLUGINS)))
        elif match.group(2) == "can":
            tokens.append(("num", float(match.group(3) in HARMLESS_FEATURES)))
        elif match.group(4):
            tokens.append(("num", float(match.group(4))))
        else:
            tokens.append(("op", match.group(5)))
        pos = match.end()
    index = 0

    def take() -> tuple[str, object]:
        nonlocal index
        if index >= len(tokens):
            raise ValueError("ends too early")
        index += 1
        return tokens[index - 1]

    def peek() -> object:
        return tokens[index][1] if index < len(tokens) else None

    def disjunction() -> float:
        value = conjunction()
        while peek() == "||":
            take()
            right = conjunction()
            value = value or right
        return value

    def conjunction() -> float:
        value = comparison()
        while peek() == "&&":
            take()
            right = comparison()
            value = value and right
        return value

    def comparison() -> float:
        value = unary()
        operator = peek()
        if operator in (">=", "<=", "==", "!=", ">", "<"):
            take()
            right = unary()
            return float(
                {
                    ">=": value >= right,
                    "<=": value <= right,
                    "==": value == right,
                    "!=": value != right,
                    ">": value > right,
                    "<": value < right,
                }[str(operator)]
            )
        return value

    def unary() -> float:
        kind, value = take()
        if kind == "num":
            assert isinstance(value, float)
            return value
        if value == "!":
            return float(not unary())
        if value == "(":
            inner = disjunction()
            if take()[1] != ")":
                raise ValueError("missing ')'")
            return inner
        raise ValueError(f"unexpected {value!r}")

    result = disjunction()
    if index != len(tokens):
        raise ValueError(f"unexpected {tokens[index][1]!r}")
    return result
