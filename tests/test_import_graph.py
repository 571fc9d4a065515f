"""The import graph: no cycle, and no upward import between the layers.

Read from the source with ``ast`` (nothing is imported). Two rules:

- No module imports itself back through others when it is loaded: the
  imports run at import time (module level, outside ``if TYPE_CHECKING:``)
  form no cycle anywhere in ``mailmoat``.
- The delivery path is layered. ``wire`` (SMTP bytes on a socket) and
  ``stats`` import none of the others; ``delivery`` only ``wire``; the SMTP
  front (``smtp``) ``wire``, ``delivery`` and ``stats``; the dashboard
  (``web``) ``delivery`` and ``stats``. None of them imports the modules
  that put a process together (``runtime``, ``fronts``, ``cluster``,
  ``autolearn``, ``commands``, ``cli``). Every import counts here, also
  those inside functions or only for type checking.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import mailmoat

SOURCE = Path(mailmoat.__file__).parent

LAYERED: dict[str, frozenset[str]] = {
    "wire": frozenset(),
    "stats": frozenset(),
    "delivery": frozenset({"wire"}),
    "smtp": frozenset({"wire", "delivery", "stats"}),
    "web": frozenset({"delivery", "stats"}),
}
ASSEMBLY = frozenset({"runtime", "fronts", "cluster", "autolearn", "commands", "cli", "__main__"})


def _modules() -> dict[str, Path]:
    found = {}
    for path in SOURCE.rglob("*.py"):
        parts = ["mailmoat", *path.relative_to(SOURCE).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _load_time(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Statements run when the module is imported (not in functions or classes,
    not under ``if TYPE_CHECKING``)."""
    for node in body:
        if isinstance(node, ast.If):
            if "TYPE_CHECKING" not in ast.unparse(node.test):
                yield from _load_time(node.body)
            yield from _load_time(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody):
                yield from _load_time(block)
            for handler in node.handlers:
                yield from _load_time(handler.body)
        elif isinstance(node, ast.With):
            yield from _load_time(node.body)
        else:
            yield node


def _targets(module: str, nodes: Iterator[ast.AST]) -> set[str]:
    """The ``mailmoat`` modules that ``nodes`` import."""
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.add(submodule if submodule in MODULES else base)
    return {name for name in found if name in MODULES and name != module}


def _imports(module: str, *, load_time_only: bool) -> set[str]:
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    nodes: Iterator[ast.AST] = _load_time(tree.body) if load_time_only else ast.walk(tree)
    return _targets(module, nodes)


def _part(module: str) -> str:
    """``mailmoat.smtp.server`` -> ``smtp``; ``mailmoat`` -> ``mailmoat``."""
    return module.split(".")[1] if "." in module else module


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path that ends where it starts, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_source_is_found() -> None:
    assert {"mailmoat.smtp.server", "mailmoat.delivery.upstream", "mailmoat.wire.connection"} <= (
        MODULES.keys()
    )
    imported = _imports("mailmoat.delivery.release", load_time_only=True)
    assert {"mailmoat.delivery.upstream", "mailmoat.delivery.quarantine"} <= imported


def test_no_module_imports_itself_back_at_load_time() -> None:
    graph = {module: _imports(module, load_time_only=True) for module in MODULES}
    assert _find_cycle(graph) is None


@pytest.mark.parametrize("layer", sorted(LAYERED))
def test_no_upward_import(layer: str) -> None:
    wrong = []
    for module in sorted(m for m in MODULES if _part(m) == layer):
        for target in sorted(_imports(module, load_time_only=False)):
            part = _part(target)
            upward = part in LAYERED and part != layer and part not in LAYERED[layer]
            if upward or part in ASSEMBLY:
                wrong.append(f"{module} imports {target}")
    assert wrong == []


def test_the_cycle_finder_finds_cycles() -> None:
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None
