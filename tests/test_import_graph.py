"""The import graph of the `mirror` package has no cycles, read from the source with ast.

Every import counts: module level, inside functions and under `if TYPE_CHECKING:`, because a
circle hidden in a function or a type-only import is still a circle a reader has to untangle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE_ROOT = Path(__file__).resolve().parents[1] / "mirror"


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_modules(root: Path = PACKAGE_ROOT) -> dict[str, Path]:
    """Every module of the package by dotted name."""
    return {_module_name(p, root): p for p in sorted(root.rglob("*.py"))}


def _absolute(module: str | None, level: int, importer: str, is_package: bool) -> str:
    if level == 0:
        return module or ""
    base = importer.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def _targets(node: ast.AST, importer: str, is_package: bool, known: set[str]) -> set[str]:
    """The package modules one import statement loads (`from x import y`: the submodule y)."""
    found: set[str] = set()
    if isinstance(node, ast.Import):
        found.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
        base = _absolute(node.module, node.level, importer, is_package)
        submodules = {f"{base}.{alias.name}" for alias in node.names} & known
        found |= submodules
        # `from pkg import sub` loads the submodule; pkg/__init__ counts only when a name is its own
        if len(submodules) < len(node.names):
            found.add(base)
    return {name for name in found if name in known}


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Edges importer -> imported over all import statements anywhere in each module."""
    known = set(modules)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        edges: set[str] = set()
        for node in ast.walk(tree):
            edges |= _targets(node, name, is_package, known)
        edges.discard(name)
        graph[name] = edges
    return graph


def _within(graph: dict[str, set[str]], prefix: str) -> dict[str, set[str]]:
    def inside(name: str) -> bool:
        return name == prefix or name.startswith(prefix + ".")

    return {m: {t for t in ts if inside(t)} for m, ts in graph.items() if inside(m)}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def _describe(graph: dict[str, set[str]], component: list[str]) -> str:
    members = set(component)
    edges = [f"  {m} -> {t}" for m in component for t in sorted(graph[m] & members)]
    return "circle of " + ", ".join(component) + ":\n" + "\n".join(edges)


@pytest.mark.parametrize("prefix", ["mirror"])
def test_no_import_cycles(prefix: str) -> None:
    graph = _within(import_graph(package_modules()), prefix)
    assert graph, f"no modules under {prefix}"
    cycles = find_cycles(graph)
    assert not cycles, "\n".join(_describe(graph, c) for c in cycles)


def test_the_checker_sees_hidden_and_type_only_imports(tmp_path: Path) -> None:
    pkg = tmp_path / "mirror"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "a.py").write_text("def f():\n    from mirror.sub import b\n")
    (pkg / "sub" / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .c import X\n"
    )
    (pkg / "sub" / "c.py").write_text("from . import a\n")
    graph = _within(import_graph(package_modules(pkg)), "mirror.sub")
    assert find_cycles(graph) == [["mirror.sub.a", "mirror.sub.b", "mirror.sub.c"]]
