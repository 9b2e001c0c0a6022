"""Engines for both databases: SQLite pragmas and transaction modes, pools, error mapping.

SQLite gets WAL, a busy timeout and foreign keys on every connection, and write
transactions start with ``BEGIN IMMEDIATE`` so that a writer waits for the lock up
front instead of failing half-way when it upgrades a read lock.

``tcia-mirror status`` reads without any engine (:mod:`mirror.catalog.statusdb`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.pool import QueuePool

from mirror import dburl
from mirror.errors import CatalogError

if TYPE_CHECKING:  # the asyncio extension pulls in the ORM: imported only to build engines
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


#: Seconds a SQLite writer waits for the lock before giving up.
SQLITE_BUSY_TIMEOUT = 60.0
#: Execution option marking an engine whose transactions write.
_WRITE = WRITE_OPTION = "mirror_write"
#: Postgres session settings of every catalog connection.
_PG_SERVER_SETTINGS = {
    "application_name": "tcia-mirror",
    # asyncpg prepares every statement; a generic plan made while a table was
    # small (seq scan) would stay in use after it grew to 200,000 series.
    "plan_cache_mode": "force_custom_plan",
}


def parse_url(url: str) -> URL:
    """The catalog URL, or a ConfigError naming the key (the checks: :func:`dburl.parse`)."""
    dburl.parse(url)
    return make_url(url)


def safe_url(url: str | URL) -> str:
    """The URL with its password hidden, for messages and logs."""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    return dburl.safe(url)


def sqlite_file(url: str | URL) -> Path | None:
    """The database file of a SQLite URL (None for Postgres and in-memory SQLite)."""
    text = url if isinstance(url, str) else url.render_as_string(hide_password=False)
    return dburl.sqlite_file(dburl.make(text))


def create_engine(url: str) -> AsyncEngine:
    """An AsyncEngine for *url*, configured for the catalog's workload."""
    from sqlalchemy.ext.asyncio import create_async_engine

    parsed = parse_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_async_engine(
            parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT})
        _configure_sqlite(engine.sync_engine)
        return engine
    return create_async_engine(
        parsed,
        pool_size=5,
        max_overflow=10,
        pool_pre_ping=True,  # a daemon outlives Postgres restarts
        connect_args={"server_settings": dict(_PG_SERVER_SETTINGS)},
    )


def writer(engine: AsyncEngine) -> AsyncEngine:
    """The same engine (same pool) whose transactions take the write lock up front."""
    return engine.execution_options(**{_WRITE: True})


def sqlite_thread_engine(url: str) -> Engine | None:
    """A plain (pysqlite) engine on the same SQLite file, for work run in a thread.

    With aiosqlite every DBAPI call is a hop to its thread and back (a dozen per
    transaction); the hot queue transactions instead run whole in one worker-thread hop
    on this engine. Same pragmas, same BEGIN IMMEDIATE for writers. None for Postgres
    and in-memory SQLite (another connection would see another database).
    """
    path = sqlite_file(url)
    if path is None:
        return None
    engine = sa_create_engine(
        URL.create("sqlite", database=str(path)), poolclass=QueuePool, pool_size=2, max_overflow=6,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT, "check_same_thread": False})
    _configure_sqlite(engine)
    return engine


def _configure_sqlite(sync_engine: Engine) -> None:
    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself (see _on_begin) instead of the driver.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "PRAGMA journal_mode=WAL",
            f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT * 1000)}",
            "PRAGMA foreign_keys=ON",
            # WAL + NORMAL survives a killed process; only power loss may drop the
            # last commits, which the next sync re-discovers.
            "PRAGMA synchronous=NORMAL",
        ):
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def describe(exc: BaseException) -> str:
    """A one-line description of a driver error, without SQL or parameters."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        exc = exc.orig
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


@contextmanager
def mapped_errors(url: str | URL) -> Iterator[None]:
    """Turn SQLAlchemy and OS errors into :class:`CatalogError` where they enter."""
    try:
        yield
    except (SQLAlchemyError, OSError) as exc:
        raise CatalogError(f"catalog {safe_url(url)}: {describe(exc)}") from exc


@contextmanager
def thread_transaction(engine: Engine, url: str | URL) -> Iterator[Connection]:
    """One transaction on a :func:`sqlite_thread_engine` (call it in a worker thread)."""
    with mapped_errors(url), engine.begin() as conn:
        yield conn


@asynccontextmanager
async def transaction(engine: AsyncEngine, url: str | URL) -> AsyncIterator[AsyncConnection]:
    """One transaction on *engine*, committed on success, errors mapped."""
    with mapped_errors(url):
        async with engine.begin() as conn:
            yield conn
