"""The shape issue 11 asked for, kept: small modules that say what they own, typed seams.

Read from the source with ast (nothing is imported), so a regression fails here, in a
second, instead of in a review. The import graph has its own test (test_import_graph).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mirror"
MODULES = sorted(PACKAGE.rglob("*.py"))
#: the sync path: the engine and the ways to run it
SEAMS = ("sync", "run")
MAX_LINES = 300


def _rel(path: Path) -> str:
    return str(path.relative_to(PACKAGE.parent))


@pytest.mark.parametrize("path", MODULES, ids=_rel)
def test_module_is_small_and_says_what_it_owns(path: Path) -> None:
    text = path.read_text()
    assert len(text.splitlines()) < MAX_LINES, f"{_rel(path)} has {len(text.splitlines())} lines"
    assert ast.get_docstring(ast.parse(text)), f"{_rel(path)} has no module docstring"


def _any_in_signatures(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        args = node.args
        params = [*args.posonlyargs, *args.args, *args.kwonlyargs,
                  *(a for a in (args.vararg, args.kwarg) if a)]
        for name, annotation in [(a.arg, a.annotation) for a in params] + [
                ("return", node.returns)]:
            if annotation is not None and any(
                    isinstance(n, ast.Name) and n.id == "Any" for n in ast.walk(annotation)):
                found.append(f"{node.name}({name}: {ast.unparse(annotation)})")
    return found


@pytest.mark.parametrize("path", [p for p in MODULES if p.parent.name in SEAMS], ids=_rel)
def test_no_any_in_the_signatures_of_the_sync_path(path: Path) -> None:
    """JSON documents are typed as such (``mirror.domain.JsonDict``-like aliases are fine
    only when they name what the value is); ports are Protocols."""
    assert _any_in_signatures(ast.parse(path.read_text())) == []


def test_the_any_finder_finds_any() -> None:
    tree = ast.parse("def f(a: Any, b: dict[str, Any]) -> int: ...\n"
                     "async def g(*, c: int) -> Any | None: ...")
    assert _any_in_signatures(tree) == ["f(a: Any)", "f(b: dict[str, Any])",
                                        "g(return: Any | None)"]


#: Each package imports only packages of a lower rank (the README's "Layout").
RANKS = {"run": 6, "sync": 5, "catalog": 4, "tcia": 4, "transfer": 4, "simulator": 4,
         "archive": 3, "config": 2}
#: the one allowed exception: RetryPolicy.from_settings names the Settings type
UPWARD_ALLOWED = {("mirror.retry", "mirror.config.settings"), ("mirror.__main__", "mirror.run.cli")}


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in RANKS else "foundation"


def test_imports_point_downwards() -> None:
    from tests.test_import_graph import import_graph, package_modules

    ranks = {**RANKS, "foundation": 1}
    wrong = sorted(f"{a} -> {b}" for a, targets in import_graph(package_modules()).items()
                   for b in targets
                   if _layer(a) != _layer(b) and ranks[_layer(a)] <= ranks[_layer(b)]
                   and (a, b) not in UPWARD_ALLOWED)
    assert wrong == []
