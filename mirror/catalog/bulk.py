"""Bulk writes without per-row SQLAlchemy work: prebuilt statements fed plain tuples.

A statement is compiled once per dialect; its rows go to the driver's executemany as
tuples in the compiled parameter order (SQLite runs the loop in C, asyncpg pipelines it).
Values SQLAlchemy would convert (UTC datetimes, states, booleans) are converted by the
column type's own bind processor, once per distinct value; JSON is serialised by orjson.
Bulk reads convert what they select the same way (:func:`untyped`, :func:`reader`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Column, Dialect, bindparam, type_coerce
from sqlalchemy.engine import Connection
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.sqltypes import NullType


@dataclass(frozen=True)
class Prepared:
    """One compiled statement: its SQL text and the column names of its parameters."""

    sql: str
    order: tuple[str, ...]

    def run(self, conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
        """Execute for every row (each a tuple in :attr:`order`)."""
        if rows:
            conn.exec_driver_sql(self.sql, list(rows))


def prepare(insert: Insert, columns: Sequence[str], dialect: Dialect) -> Prepared:
    """Compile ``insert`` with one parameter per column of *columns*.

    *columns* must be in table order (SQLAlchemy binds them in that order) and name
    every column it would bind (defaults included): anything else raises here, before
    a row could be written misaligned.
    """
    table = insert.table
    stmt = insert.values({c: bindparam(c, type_=table.c[c].type) for c in columns})
    # for_executemany: no implicit RETURNING of the primary key (Postgres)
    compiled = stmt.compile(dialect=dialect, for_executemany=True)
    order = tuple(compiled.positiontup or ())
    if order != tuple(columns):
        raise AssertionError(f"prebuilt statement binds {order}, expected {tuple(columns)}")
    return Prepared(compiled.string, order)


def converter(column: Column[Any], dialect: Dialect) -> Callable[[Any], Any]:
    """*column*'s bind conversion on *dialect*, memoised per distinct (hashable) value.

    Listings repeat a few hundred dates in 200,000 rows: each is converted once.
    """
    return _memoised(column.type.dialect_impl(dialect).bind_processor(dialect))


def reader(column: Column[Any], dialect: Dialect) -> Callable[[Any], Any]:
    """*column*'s result conversion on *dialect* (for a column selected through
    :func:`untyped`), memoised per distinct value like :func:`converter`."""
    return _memoised(column.type.dialect_impl(dialect).result_processor(dialect, None))


def untyped(column: Column[Any]) -> Any:
    """*column* selected as the driver returns it (convert it with :func:`reader`)."""
    return type_coerce(column, NullType())


def _memoised(process: Callable[[Any], Any] | None) -> Callable[[Any], Any]:
    if process is None:
        return _same
    done: dict[Hashable, Any] = {}

    def convert(value: Any) -> Any:
        try:
            return done[value]
        except KeyError:
            if len(done) > 65536:  # a pathological spread of values: stay bounded
                done.clear()
            out = done[value] = process(value)
            return out

    return convert


def _same(value: Any) -> Any:
    return value


def json_text(value: Any) -> str | None:
    """A JSON column's text (None: SQL NULL), as the JSON type would store it.

    orjson is ~10x cheaper than ``json.dumps``; what it cannot render (integers beyond
    64 bits) goes through ``json.dumps``. NaN and infinities become null: Postgres' json
    type refuses the ``NaN`` token ``json.dumps`` would write. A listing row made by
    :mod:`mirror.tcia.rows` carries its orjson text already (``json_text``).
    """
    if value is None:
        return None
    if (text := getattr(value, "json_text", None)) is not None:
        return text  # type: ignore[no-any-return]
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # orjson.JSONEncodeError
        return json.dumps(value)
