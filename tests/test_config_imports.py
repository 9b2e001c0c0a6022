"""The config package imports one way (values <- model <- checks <- sources <- settings):
no circle, counting imports inside functions and under TYPE_CHECKING too."""

import ast
from pathlib import Path

import mirror.config

PACKAGE = Path(mirror.config.__file__).parent


def imports_within_config(path: Path) -> set[str]:
    """Every mirror.config module *path* imports, wherever the import statement stands."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                whole = f"{node.module}.{alias.name}"
                found.add(whole if (PACKAGE / f"{alias.name}.py").exists()
                          and node.module == "mirror.config" else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("mirror.config.")}


def test_config_modules_import_without_a_circle() -> None:
    graph = {f"mirror.config.{p.stem}": imports_within_config(p)
             for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    assert graph["mirror.config.settings"] >= {"mirror.config.sources"}  # the graph is real
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, " -> ".join((*path, module))
        if module not in done:
            for target in sorted(graph.get(module, ())):
                visit(target, (*path, module))
            done.add(module)

    for module in sorted(graph):
        visit(module, ())
