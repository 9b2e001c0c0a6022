"""The package list in pyproject.toml ships every subpackage and the Alembic migrations."""

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_every_subpackage_is_listed() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {".".join(p.parent.relative_to(REPO).parts)
             for p in (REPO / "mirror").rglob("__init__.py")}
    assert found | {"mirror._migrations", "mirror._migrations.versions"} == set(
        config["packages"])
    assert config["package-dir"]["mirror._migrations"] == "migrations"
    assert (REPO / "migrations" / "env.py").is_file()
