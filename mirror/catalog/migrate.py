"""Apply Alembic migrations to a catalog from inside the program (``tcia-mirror db upgrade``).

Migrations run on a connection of our own async engine, inside one write transaction:
Postgres serialises concurrent upgraders with an advisory lock, SQLite with BEGIN
IMMEDIATE, so several workers starting at once cannot race to create tables.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.engine import Connection

from mirror.catalog import engine as catalog_engine
from mirror.catalog.records import NotInitialised
from mirror.errors import CatalogError

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.ext.asyncio import AsyncEngine

def _migrations_dir() -> Path:
    """The checkout's ``migrations/`` (editable install), else the copy shipped in the
    package as ``mirror/_migrations`` (a wheel or a plain ``pip install .``)."""
    here = Path(__file__).resolve()
    checkout = here.parents[2] / "migrations"
    return checkout if (checkout / "env.py").is_file() else here.parents[1] / "_migrations"


MIGRATIONS_DIR = _migrations_dir()
#: The newest revision in migrations/versions (a test keeps it equal to Alembic's head).
#: Knowing it without Alembic lets a catalog that is already current open without
#: importing Alembic at all, which is most of a no-op sync's start-up time.
HEAD_REVISION = "0004"
#: Arbitrary constant naming the Postgres advisory lock taken while migrating.
_PG_LOCK = 0x7C1A_3122


def alembic_config() -> Config:
    """An Alembic config for the migrations folder, without an ini file."""
    from alembic.config import Config

    if not (MIGRATIONS_DIR / "env.py").is_file():
        raise CatalogError(f"Alembic migrations not found in {MIGRATIONS_DIR}")
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def head_revision() -> str | None:
    """The newest revision the code knows."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the catalog at *url* up to *revision* (creating a SQLite file's folder)."""
    ensure_sqlite_dir(url)
    await _run(url, "upgrade", revision)


def ensure_sqlite_dir(url: str) -> None:
    """Create the folder of a SQLite catalog file if it is missing."""
    path = catalog_engine.sqlite_file(url)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CatalogError(f"cannot create {path.parent}: {exc}") from exc


async def downgrade(url: str, revision: str) -> None:
    """Migrate the catalog at *url* down to *revision* (``"base"`` drops everything)."""
    await _run(url, "downgrade", revision)


async def current_revision(url: str) -> str | None:
    """The revision the catalog is at, or None when it was never migrated."""
    engine = catalog_engine.create_engine(url)
    try:
        return await engine_revision(engine, url)
    finally:
        await engine.dispose()


async def engine_revision(engine: AsyncEngine, url: str) -> str | None:
    async with catalog_engine.transaction(engine, url) as conn:
        return await conn.run_sync(_current_revision)


def _current_revision(connection: Connection) -> str | None:
    """What Alembic's MigrationContext.get_current_revision reads, without Alembic."""
    from sqlalchemy import inspect

    if not inspect(connection).has_table("alembic_version"):
        return None
    rows = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    return rows[0][0] if len(rows) == 1 else None


def require_sqlite_file(url: str) -> None:
    """A SQLite catalog file must exist before a reader connects (which would create it)."""
    path = catalog_engine.sqlite_file(url)
    if path is not None and not path.is_file():
        raise NotInitialised(
            f"catalog at {catalog_engine.safe_url(url)} is not initialised; "
            "run `tcia-mirror db upgrade`")


async def check_engine(engine: AsyncEngine, url: str) -> None:
    """Raise unless the catalog behind *engine* is at the schema this code expects."""
    check_revision(await engine_revision(engine, url), url)


def check_current(connection: Connection, url: str) -> None:
    """:func:`check_engine` on a synchronous connection (the reads of ``status``)."""
    check_revision(_current_revision(connection), url)


def check_revision(current: str | None, url: str) -> None:
    """Raise unless *current* is the schema revision this code expects."""
    if current is None:
        raise NotInitialised(
            f"catalog at {catalog_engine.safe_url(url)} is not initialised; "
            "run `tcia-mirror db upgrade`")
    if current != HEAD_REVISION:
        raise CatalogError(
            f"catalog at {catalog_engine.safe_url(url)} is at schema revision {current}, "
            f"this program needs {HEAD_REVISION}; run `tcia-mirror db upgrade`")


async def migrate_engine(
    engine: AsyncEngine, url: str, action: str = "upgrade", revision: str = "head"
) -> None:
    """Run an Alembic *action* through an engine the caller already has (Catalog.open).

    An upgrade to head of a catalog that is already there is a no-op that skips Alembic.
    """
    if (action, revision) == ("upgrade", "head") and (
            await engine_revision(engine, url) == HEAD_REVISION):
        return
    cfg = alembic_config()
    async with catalog_engine.transaction(catalog_engine.writer(engine), url) as conn:
        await conn.run_sync(_command, cfg, action, revision)


async def _run(url: str, action: str, revision: str) -> None:
    engine = catalog_engine.create_engine(url)
    try:
        await migrate_engine(engine, url, action, revision)
    finally:
        await engine.dispose()


def _command(connection: Connection, cfg: Config, action: str, revision: str) -> None:
    from alembic import command

    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK})
    cfg.attributes["connection"] = connection
    getattr(command, action)(cfg, revision)
