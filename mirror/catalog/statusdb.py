"""The reads of ``tcia-mirror status`` as stored SQL run straight on the driver.

sqlite3 for SQLite (no event loop at all), asyncpg in one short ``asyncio.run`` for
Postgres: neither SQLAlchemy nor Alembic is imported, which is most of what a status
process used to cost. Only the command's reads are here (the table and ``--failed``);
the daemon's status page reads through its open Catalog. The statements are what
:mod:`mirror.catalog.reports` compiles to on each database, and the rows come back as
the same JSON-ready dicts; a test runs both on the same catalogs and compares. The
schema check is :func:`mirror.catalog.migrate.check_current`'s, with the same messages.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

from mirror import dburl
from mirror.catalog.records import NotInitialised
from mirror.domain import SeriesState
from mirror.errors import STORAGE_FULL_TEXTS, CatalogError, MirrorError

#: = migrate.HEAD_REVISION (importing migrate imports SQLAlchemy); a test keeps them equal.
HEAD_REVISION = "0004"
#: = engine.SQLITE_BUSY_TIMEOUT and engine._PG_SERVER_SETTINGS (a test keeps them equal).
SQLITE_BUSY_TIMEOUT = 60.0
PG_SERVER_SETTINGS = {"application_name": "tcia-mirror", "plan_cache_mode": "force_custom_plan"}
#: = what engine._configure_sqlite runs on every connection
SQLITE_PRAGMAS = ("PRAGMA journal_mode=WAL",
                  f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT * 1000)}",
                  "PRAGMA foreign_keys=ON", "PRAGMA synchronous=NORMAL")

#: (SQLite, Postgres): is there an alembic_version table (as inspect().has_table)?
HAS_VERSION_TABLE = (
    "SELECT count(*) FROM sqlite_master WHERE type IN ('table', 'view') "
    "AND name = 'alembic_version'",
    "SELECT count(*) FROM pg_catalog.pg_class c WHERE c.relname = 'alembic_version' "
    "AND c.relkind IN ('r', 'p', 'f', 'v', 'm') AND pg_catalog.pg_table_is_visible(c.oid)")
VERSION = "SELECT version_num FROM alembic_version"
#: reports.read_collection_status: series summed per (collection, state) from the
#: columns of ix_series_status alone, then joined to their collection.
COLLECTION_STATUS = (
    "SELECT collections.name, collections.watermark, collections.last_poll_at, "
    "collections.last_poll_ok, collections.last_reconcile_at, totals.state, totals.n, "
    "totals.size, totals.files, collections.source, collections.hash_checked_at, "
    "collections.hash_changed, collections.hash_pass_started_at, "
    "collections.hash_pass_changed FROM collections LEFT OUTER JOIN ("
    "SELECT series.collection_id AS collection_id, series.state AS state, count(*) AS n, "
    "sum(series.local_bytes) AS size, sum(series.local_instance_count) AS files "
    "FROM series GROUP BY series.collection_id, series.state) AS totals "
    "ON totals.collection_id = collections.id ORDER BY collections.name")
#: reports.read_storage_full: queued or failed series whose error says the disk is full.
STORAGE_FULL = (
    "SELECT collections.name, count(*), max(series.last_error) FROM series "
    "JOIN collections ON collections.id = series.collection_id "
    "WHERE series.state IN (?, ?) AND ("
    + " OR ".join(["series.last_error LIKE '%' || ? || '%' ESCAPE '/'"] * len(STORAGE_FULL_TEXTS))
    + ") GROUP BY collections.name")
POLL_ERRORS = ("SELECT collections.name, collections.last_error FROM collections "
               "WHERE collections.last_error IS NOT NULL")
#: reports.read_failed_series: a page of failed series, then their study and patient.
FAILED_SERIES = (
    "SELECT page.series_uid, patients.patient_id, page.name, page.modality, page.attempts, "
    "page.last_error, page.file_size FROM (SELECT series.id AS id, "
    "series.series_uid AS series_uid, series.study_ref AS study_ref, collections.name AS name, "
    "series.modality AS modality, series.attempts AS attempts, "
    "series.last_error AS last_error, series.file_size AS file_size FROM series "
    "JOIN collections ON collections.id = series.collection_id WHERE series.state = ? "
    "ORDER BY collections.name, series.id LIMIT ?) AS page "
    "JOIN studies ON studies.id = page.study_ref "
    "JOIN patients ON patients.id = studies.patient_ref ORDER BY page.name, page.id")

def read(url: str, what: str, **kw: Any) -> Any:
    """*what* ("collections" or "failed", see :func:`_fold`) of the catalog
    at *url*, in one read transaction; errors are :class:`CatalogError` with the password
    hidden. Never migrates."""
    parsed = dburl.parse(url)
    if parsed.backend == "sqlite":
        return _sqlite(parsed, what, kw)
    import asyncio  # Postgres only: SQLite needs no event loop

    return asyncio.run(_postgres(parsed, what, kw))


def _failure(url: dburl.DbUrl, exc: BaseException) -> CatalogError:
    text = str(exc).strip().splitlines()
    detail = f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")
    return CatalogError(f"catalog {url.render()}: {detail}")


def _sqlite(url: dburl.DbUrl, what: str, kw: dict[str, Any]) -> Any:
    path = dburl.sqlite_file(url)
    if path is not None and not path.is_file():  # connecting would create it
        raise _not_initialised(url)
    try:
        conn = sqlite3.connect(str(path) if path else ":memory:", timeout=SQLITE_BUSY_TIMEOUT,
                               isolation_level=None)
        try:
            for pragma in SQLITE_PRAGMAS:
                conn.execute(pragma)
            conn.execute("BEGIN")
            try:
                present = conn.execute(HAS_VERSION_TABLE[0]).fetchall()[0][0]
                _check(url, conn.execute(VERSION).fetchall() if present else [])
                return _fold(what, {sql: conn.execute(sql, args).fetchall()
                                        for sql, args in _statements(what, kw)})
            finally:
                conn.execute("ROLLBACK")  # nothing was written
        finally:
            conn.close()
    except MirrorError:
        raise
    except (sqlite3.Error, OSError) as exc:
        raise _failure(url, exc) from exc


async def _postgres(url: dburl.DbUrl, what: str, kw: dict[str, Any]) -> Any:
    import asyncpg

    try:
        conn = await asyncpg.connect(**_pg_connect_args(url),
                                     server_settings=dict(PG_SERVER_SETTINGS))
        try:
            async with conn.transaction(readonly=True):
                present = await conn.fetchval(HAS_VERSION_TABLE[1])
                _check(url, await conn.fetch(VERSION) if present else [])
                results = {sql: await conn.fetch(_dollars(sql), *args)
                           for sql, args in _statements(what, kw)}
            return _fold(what, results)
        finally:
            await conn.close(timeout=10)
    except MirrorError:
        raise
    except Exception as exc:  # asyncpg's errors, OSError, timeouts: one line, never a trace
        raise _failure(url, exc) from exc


def _pg_connect_args(url: dburl.DbUrl) -> dict[str, Any]:
    """What SQLAlchemy's asyncpg dialect hands asyncpg.connect for *url*."""
    opts: dict[str, Any] = {k: v for k, v in (
        ("host", url.host), ("database", url.database), ("user", url.username),
        ("password", url.password), ("port", url.port)) if v}
    opts.update({k: list(v) if isinstance(v, tuple) else v for k, v in url.query.items()})
    for key in ("port", "prepared_statement_cache_size"):
        if isinstance(opts.get(key), str):
            opts[key] = int(opts[key])
    return opts


def _dollars(sql: str) -> str:
    """``?`` placeholders as Postgres's ``$1, $2, ...`` (the statements hold no other ``?``)."""
    parts = sql.split("?")
    return "".join(part + (f"${i}" if i < len(parts) else "")
                   for i, part in enumerate(parts, start=1))


def _like(mark: str) -> str:
    """``contains(mark, autoescape=True)``: the mark with ``/``, ``%`` and ``_`` escaped."""
    return "%" + mark.replace("/", "//").replace("%", "/%").replace("_", "/_") + "%"


def _statements(what: str, kw: dict[str, Any]) -> list[tuple[str, tuple[Any, ...]]]:
    """The reads *what* needs and their parameters."""
    if what == "collections":
        return [(COLLECTION_STATUS, ()),
                (STORAGE_FULL, (SeriesState.QUEUED.value, SeriesState.FAILED.value,
                                *(_like(m) for m in STORAGE_FULL_TEXTS))),
                (POLL_ERRORS, ())]
    return [(FAILED_SERIES, (SeriesState.FAILED.value, kw.get("failed_limit", 1000)))]


def _check(url: dburl.DbUrl, rows: Sequence[Sequence[Any]]) -> None:
    """migrate.check_current on the alembic_version rows (none: no such table)."""
    current = rows[0][0] if len(rows) == 1 else None
    if current is None:
        raise _not_initialised(url)
    if current != HEAD_REVISION:
        raise CatalogError(
            f"catalog at {url.render()} is at schema revision {current}, "
            f"this program needs {HEAD_REVISION}; run `tcia-mirror db upgrade`")


def _fold(what: str, results: dict[str, Sequence[Sequence[Any]]]) -> Any:
    """The JSON-ready answer from the rows of :func:`_statements`: "collections" (status
    rows) or "failed" (failed series)."""
    if what == "collections":
        return _collections(results[COLLECTION_STATUS], results[STORAGE_FULL],
                            {name: error for name, error in results[POLL_ERRORS]})
    return [{"collection": name, "series_uid": uid, "patient_id": patient, "modality": modality,
             "attempts": attempts, "file_size": size, "last_error": error or ""}
            for uid, patient, name, modality, attempts, error, size in results[FAILED_SERIES]]


def _not_initialised(url: dburl.DbUrl) -> NotInitialised:
    return NotInitialised(f"catalog at {url.render()} is not initialised; "
                          "run `tcia-mirror db upgrade`")


def _collections(rows: Sequence[Sequence[Any]], full: Sequence[Sequence[Any]],
                 errors: dict[str, str]) -> list[dict[str, Any]]:
    """reports.read_collection_status, then status's last poll errors."""
    out: dict[str, dict[str, Any]] = {}
    for name, mark, poll, ok, reconcile, state, n, size, count, *hashes in rows:
        entry = out.get(name)
        if entry is None:
            entry = out[name] = empty_status(name, _date(mark), _when(poll),
                                              None if ok is None else bool(ok), _when(reconcile))
        source, checked, changed, started, pass_changed = hashes
        checked, started = _when(checked), _when(started)
        entry.update({
            "source": source,
            "last_hash_check": checked.isoformat() if checked else None,
            "last_hash_check_changed": changed,
            "hash_scrub_started": started.isoformat() if started else None,
            "hash_scrub_changed": pass_changed if started else None,
        })
        if state is not None:
            state = SeriesState(state)
            entry[state.value] += n
            entry["series_total"] += 0 if state is SeriesState.RETIRED else n
            entry["bytes_on_disk"] += int(size or 0)
            entry["instances"] += int(count or 0)
    for name, waiting, error in full:
        if name in out:
            out[name].update(storage="full", storage_waiting=waiting, storage_error=error)
    for row in out.values():
        row.setdefault("last_poll_error",
                       errors.get(row["collection"]) if row.get("last_poll_ok") is False else None)
    return list(out.values())


def empty_status(name: str, watermark: date | None, last_poll: datetime | None,
                 last_poll_ok: bool | None, last_reconcile: datetime | None,
                 ) -> dict[str, Any]:
    """A collection's status row before its series are counted (both readers start here)."""
    return {
        "collection": name, "series_total": 0,
        **{state.value: 0 for state in SeriesState},
        "bytes_on_disk": 0, "instances": 0,
        "last_poll": last_poll.isoformat() if last_poll else None,
        "last_poll_ok": last_poll_ok,
        "watermark": watermark.isoformat() if watermark else None,
        "last_reconcile": last_reconcile.isoformat() if last_reconcile else None,
        "storage": "ok", "storage_waiting": 0, "storage_error": None,
    }


def _when(value: datetime | str | None) -> datetime | None:
    """A UtcDateTime column's value: SQLite's naive UTC text or Postgres's timestamptz."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _date(value: date | str | None) -> date | None:
    return date.fromisoformat(value) if isinstance(value, str) else value
