"""The schema is made by Alembic only, agrees with the models, and migrates both ways."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from mirror.catalog import Catalog, NotInitialised, migrate, models
from mirror.catalog import engine as catalog_engine
from mirror.errors import CatalogError, ConfigError

TABLES = {"collections", "patients", "studies", "series", "instances", "sync_runs"}


async def _tables(url: str) -> set[str]:
    engine = catalog_engine.create_engine(url)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await engine.dispose()


async def test_models_and_migrations_agree(catalog_url: str) -> None:
    await migrate.upgrade(catalog_url)
    engine = catalog_engine.create_engine(catalog_url)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(lambda c: compare_metadata(
                MigrationContext.configure(c, opts={"compare_type": True}), models.metadata))
    finally:
        await engine.dispose()
    assert diff == []


async def test_upgrade_downgrade_upgrade_round_trips(catalog_url: str) -> None:
    await migrate.upgrade(catalog_url)
    assert await _tables(catalog_url) >= TABLES
    assert await migrate.current_revision(catalog_url) == migrate.head_revision()

    await migrate.downgrade(catalog_url, "base")
    assert not TABLES & await _tables(catalog_url)
    assert await migrate.current_revision(catalog_url) is None

    await migrate.upgrade(catalog_url)
    assert await _tables(catalog_url) >= TABLES
    catalog = await Catalog.open(catalog_url, upgrade=False)
    await catalog.close()


async def test_open_without_upgrade_refuses_an_empty_catalog(catalog_url: str) -> None:
    with pytest.raises(NotInitialised, match="db upgrade"):
        await Catalog.open(catalog_url, upgrade=False)


async def test_open_without_upgrade_does_not_create_a_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "absent" / "catalog.db"
    with pytest.raises(NotInitialised):
        await Catalog.open(f"sqlite+aiosqlite:///{path}", upgrade=False)
    assert not path.parent.exists()


async def test_upgrade_creates_the_sqlite_folder_and_sets_pragmas(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'deep' / 'er' / 'catalog.db'}"
    catalog = await Catalog.open(url)
    try:
        async with catalog._read() as conn:
            pragmas = {name: (await conn.execute(text(f"PRAGMA {name}"))).scalar_one()
                       for name in ("journal_mode", "foreign_keys", "busy_timeout")}
    finally:
        await catalog.close()
    assert pragmas == {"journal_mode": "wal", "foreign_keys": 1, "busy_timeout": 60000}


async def test_bad_urls_are_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"catalog\.url"):
        await Catalog.open("mysql://localhost/x")


async def test_open_without_upgrade_refuses_an_old_schema(catalog_url: str) -> None:
    await migrate.upgrade(catalog_url)
    engine = catalog_engine.create_engine(catalog_url)
    try:
        async with engine.begin() as conn:  # pretend an older program made this catalog
            await conn.execute(text("UPDATE alembic_version SET version_num = '0000'"))
    finally:
        await engine.dispose()
    with pytest.raises(CatalogError, match="revision 0000") as caught:
        await Catalog.open(catalog_url, upgrade=False)
    assert not isinstance(caught.value, NotInitialised)


async def test_driver_errors_become_catalog_errors_without_the_password() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(CatalogError) as caught:
        await Catalog.open(f"postgresql+asyncpg://mirror:s3cret@127.0.0.1:{port}/catalog")
    assert "s3cret" not in str(caught.value) and "***" in str(caught.value)
    assert caught.value.__cause__ is not None


def test_head_revision_constant_matches_alembic() -> None:
    assert migrate.head_revision() == migrate.HEAD_REVISION
