"""Read the main.cf/master.cf snippets of docs/postfix.md, so the integration
tests run Postfix with exactly what the documentation tells users to write."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "postfix.md"


def snippet(name: str, ports: dict[str, str] | None = None) -> str:
    """The fenced block after ``<!-- snippet: NAME -->``, addresses replaced
    (``{"127.0.0.1:8891": "127.0.0.1:40123"}``)."""
    text = DOC.read_text(encoding="utf-8")
    match = re.search(rf"<!-- snippet: {re.escape(name)} -->\s*```[a-z]*\n(.*?)```", text, re.S)
    if match is None:
        raise LookupError(f"no snippet {name!r} in {DOC}")
    body = match.group(1)
    for old, new in (ports or {}).items():
        body = body.replace(old, new)
    return body


def main_cf(name: str, ports: dict[str, str] | None = None) -> dict[str, str]:
    params: dict[str, str] = {}
    last = ""
    for line in snippet(name, ports).splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line[0].isspace() and last:
            params[last] += " " + line.strip()
            continue
        key, _, value = line.partition("=")
        last = key.strip()
        params[last] = value.strip()
    return params


def master_cf(name: str, ports: dict[str, str] | None = None) -> tuple[dict[str, str], list[str]]:
    """(``-o`` options of the public ``smtp`` service, the other master.cf lines)."""
    options: dict[str, str] = {}
    others: list[str] = []
    in_smtp = False
    for line in snippet(name, ports).splitlines():
        if not line.strip():
            continue
        if not line[0].isspace():
            in_smtp = line.split()[0] == "smtp"
            if not in_smtp:
                others.append(line)
            continue
        if in_smtp:
            key, _, value = line.strip().removeprefix("-o ").partition("=")
            options[key] = value
        else:
            others.append(line)
    return options, others
