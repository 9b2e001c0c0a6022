"""What every catalog operation shares: the engine, transactions, and guarded state changes.

Bulk state changes are one UPDATE whose WHERE and SET are built from the transition
table (:func:`mirror.domain.sources_of`), so SQL can never move a series along an edge
the table lacks; single-row changes read the row and call :func:`mirror.domain.transition`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Collection, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    String,
    any_,
    bindparam,
    case,
    func,
    literal,
    literal_column,
    or_,
    select,
)
from sqlalchemy.engine import Connection, Engine

from mirror.catalog import engine as catalog_engine
from mirror.catalog import models
from mirror.domain import Event, sources_of, transition

if TYPE_CHECKING:  # `status` reads through this module's helpers without the async stack
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

T = TypeVar("T")
#: Rows per step of bulk work (upsert chunk, uid list): bounds memory and statement
#: size while keeping round trips rare. SQLAlchemy pages multi-row VALUES below each
#: database's bound-parameter limit by itself.
CHUNK = 2000

series = models.series


def utcnow() -> datetime:
    return datetime.now(UTC)


def chunked(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def guarded(event: Event) -> tuple[ColumnElement[bool], ColumnElement[Any]]:
    """(WHERE, new state) applying *event* to every row whose state allows it."""
    targets = {source: transition(source, event) for source in sources_of(event)}
    where = series.c.state.in_(list(targets))
    if len(set(targets.values())) == 1:
        new = literal(next(iter(targets.values())), models.StateType())
    else:
        new = case(
            *[(series.c.state == source, literal(target, models.StateType()))
              for source, target in targets.items()],
            else_=series.c.state,
        )
    return where, new


@dataclass(frozen=True)
class Scope:
    """What one run works on: whole collections plus the series pinned by manifests.

    Accepted wherever a list of collection names is (claims, counts, listings).
    """

    collections: tuple[str, ...] = ()
    #: manifest keys (absolute paths) whose pinned series are in scope
    manifests: tuple[str, ...] = ()


def in_collections(names: Sequence[str] | Scope | None) -> ColumnElement[bool] | None:
    """Filter series to the named collections, or to a :class:`Scope` (None: no filter)."""
    if names is None:
        return None
    wanted = names.collections if isinstance(names, Scope) else names
    ids = select(models.collections.c.id).where(models.collections.c.name.in_(list(wanted)))
    where = series.c.collection_id.in_(ids.scalar_subquery())
    if isinstance(names, Scope) and names.manifests:
        pins = models.manifest_series
        pinned = select(pins.c.series_uid).where(pins.c.manifest.in_(list(names.manifests)))
        where = or_(where, series.c.series_uid.in_(pinned.scalar_subquery()))
    return where


def with_names(query: Any) -> Any:
    """Join a series query to its study, patient and collection."""
    st, p, c = models.studies, models.patients, models.collections
    return (query.join(st, st.c.id == series.c.study_ref).join(p, p.c.id == st.c.patient_ref)
            .join(c, c.c.id == series.c.collection_id))


class Store:
    """The engine and transaction helpers the operation mixins build on."""

    def __init__(self, engine: AsyncEngine, url: str) -> None:
        self._engine = engine
        self._writer = catalog_engine.writer(engine)
        self._url = url
        self._postgres = engine.dialect.name == "postgresql"
        self._thread_writer: Engine | None = None
        self._thread_reader: Engine | None = None
        if (thread_engine := catalog_engine.sqlite_thread_engine(url)) is not None:
            self._thread_reader = thread_engine
            self._thread_writer = thread_engine.execution_options(
                **{catalog_engine.WRITE_OPTION: True})

    @property
    def url(self) -> str:
        return self._url

    @property
    def dialect(self) -> str:
        return self._engine.dialect.name

    def _one_of(self, column: Any, values: Collection[Any]) -> ColumnElement[bool]:
        """``column IN values`` with the values in ONE bound parameter.

        Expanding thousands of parameters costs more than the query (SQLAlchemy renders
        each, and every list length is a new statement to prepare): Postgres gets
        ``= ANY(array)``, SQLite a JSON array unpacked by ``json_each``.
        """
        items = list(values)
        if self._postgres:
            from sqlalchemy.dialects.postgresql import ARRAY

            return column == any_(bindparam(None, items, type_=ARRAY(column.type)))
        unpacked = select(literal_column("value")).select_from(
            func.json_each(bindparam(None, json.dumps(items), type_=String())))
        return column.in_(unpacked.scalar_subquery())

    def _one_of_param(self, column: Any, name: str) -> ColumnElement[bool]:
        """Like :meth:`_one_of` with a named parameter, for statements built once;
        pass the values through :meth:`_one_of_value`."""
        if self._postgres:
            from sqlalchemy.dialects.postgresql import ARRAY

            return column == any_(bindparam(name, type_=ARRAY(column.type)))
        unpacked = select(literal_column("value")).select_from(
            func.json_each(bindparam(name, type_=String())))
        return column.in_(unpacked.scalar_subquery())

    def _one_of_value(self, values: Collection[Any]) -> Any:
        return list(values) if self._postgres else json.dumps(list(values))

    def _insert(self, table: Any) -> Any:
        """The dialect's INSERT, which knows ON CONFLICT."""
        from sqlalchemy.dialects import postgresql, sqlite  # loaded with the engine anyway

        return (postgresql.insert if self._postgres else sqlite.insert)(table)

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        async with catalog_engine.transaction(self._engine, self._url) as conn:
            yield conn

    async def _run_write(self, work: Callable[[Connection], T]) -> T:
        """Run *work* (plain synchronous SQLAlchemy) in one write transaction.

        On a SQLite file the whole transaction is one worker-thread hop on a pysqlite
        connection; elsewhere it runs on the async engine (``run_sync``).
        """
        if (engine := self._thread_writer) is not None:
            import anyio.to_thread

            return await anyio.to_thread.run_sync(self._in_thread, engine, work)
        async with self._write() as conn:
            return await conn.run_sync(work)

    async def _run_read(self, work: Callable[[Connection], T]) -> T:
        """Run *work* (plain synchronous SQLAlchemy) in one read transaction: like
        :meth:`_run_write`, without taking the write lock (a plain ``BEGIN``). For reads
        of many rows: aiosqlite hops threads for every batch of rows it fetches."""
        if (engine := self._thread_reader) is not None:
            import anyio.to_thread

            return await anyio.to_thread.run_sync(self._in_thread, engine, work)
        async with self._read() as conn:
            return await conn.run_sync(work)

    def _in_thread(self, engine: Engine, work: Callable[[Connection], T]) -> T:
        with catalog_engine.thread_transaction(engine, self._url) as conn:
            return work(conn)

    def _dispose_thread_engine(self) -> None:
        if self._thread_writer is not None:
            self._thread_writer.engine.dispose()

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        async with catalog_engine.transaction(self._writer, self._url) as conn:
            yield conn

