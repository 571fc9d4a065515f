"""``mailmoat config``: show, check or document the configuration.

- ``mailmoat config [--config FILE]``: the effective configuration as TOML
  (every key, defaults filled in; secrets shown as ``"<hidden>"``: the
  dashboard's password hash and secret key, and passwords inside URLs such
  as ``store.url``, user info or a ``password=`` query parameter).
- ``--check``: validate FILE the way ``serve`` does before it starts
  (``load_runtime_config``, the rule files it names included): prints
  ``ok`` or one line per problem, each naming the key and, for rule files,
  ``file:line`` (exit 2).
- ``--reference``: a Markdown reference of every key, its default and the
  comment above it in ``mailmoat/config.py`` (``docs/configuration.md`` is
  made from it).
"""

from __future__ import annotations

import argparse
import ast
import inspect
import json
from dataclasses import fields, is_dataclass
from typing import Any

from mailmoat.config import CheckSettings, Config, load_config, load_runtime_config
from mailmoat.config import sections as config_module
from mailmoat.config.redact import HIDDEN, SECRET_KEYS, redact_url


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="TOML config file (default: embedded defaults)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--check", action="store_true", help="only validate the file")
    group.add_argument("--reference", action="store_true", help="print the Markdown reference")


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, tuple | list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")


def render(config: Config) -> str:
    lines: list[str] = [f"# effective configuration ({config.source})"]
    for section in fields(config):
        value = getattr(config, section.name)
        if section.name == "source":
            continue
        if is_dataclass(value):
            lines.append(f"\n[{section.name}]")
            for item in fields(value):
                shown = getattr(value, item.name)
                if item.name in SECRET_KEYS and shown:
                    shown = HIDDEN
                elif isinstance(shown, str):
                    shown = redact_url(shown)
                lines.append(f"{item.name} = {toml_value(shown)}")
        elif section.name == "scores":
            lines.append("\n[scores]")
            lines.extend(f"{k} = {toml_value(v)}" for k, v in sorted(value.items()))
        elif section.name == "checks":
            for name, settings in sorted(value.items()):
                lines.append(f"\n[checks.{name}]")
                lines.extend(
                    f"{f.name} = {toml_value(getattr(settings, f.name))}" for f in fields(settings)
                )
    return "\n".join(lines) + "\n"


def field_comments() -> dict[tuple[str, str], str]:
    """``{(ClassName, field): comment text}`` from the comments above fields."""
    source = inspect.getsource(config_module)
    lines = source.splitlines()
    found: dict[tuple[str, str], str] = {}
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.ClassDef):
            continue
        for item in node.body:
            if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                comment: list[str] = []
                index = item.lineno - 2
                while index >= 0 and lines[index].strip().startswith("#"):
                    comment.insert(0, lines[index].strip().lstrip("#").strip())
                    index -= 1
                found[(node.name, item.target.id)] = " ".join(comment)
    return found


def reference() -> str:
    comments = field_comments()
    out = [
        "| key | default | meaning |",
        "|---|---|---|",
    ]
    defaults = Config()
    for section in fields(defaults):
        value = getattr(defaults, section.name)
        if not is_dataclass(value):
            continue
        cls = type(value)
        doc = " ".join((inspect.getdoc(cls) or "").split())
        out.append(
            f"| **[{section.name}]** | | {doc if not doc.startswith(cls.__name__) else ''} |"
        )
        for item in fields(value):
            text = comments.get((cls.__name__, item.name), "").replace("|", "\\|")
            default = toml_value(getattr(value, item.name)).replace("|", "\\|")
            out.append(f"| `{section.name}.{item.name}` | `{default}` | {text} |")
    out.append(
        "| **[scores]** | | symbol name = score, overriding the check's default; the names "
        "are in docs/symbols.md and `mailmoat symbols` (an unknown name is an error) |"
    )
    out.append("| **[checks.NAME]** | | per check (NAME: a check of `mailmoat symbols`): |")
    for item in fields(CheckSettings):
        text = comments.get(("CheckSettings", item.name), "")
        default = toml_value(getattr(CheckSettings(), item.name))
        out.append(f"| `checks.NAME.{item.name}` | `{default}` | {text} |")
    return "\n".join(out) + "\n"


def run(args: argparse.Namespace) -> int:
    if args.reference:
        print(reference(), end="")
        return 0
    if args.check:
        checked = load_runtime_config(args.config)
        print(f"ok: {checked.source}")
        return 0
    config = load_config(args.config)
    print(render(config), end="")
    return 0
