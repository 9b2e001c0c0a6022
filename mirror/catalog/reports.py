"""Reads for verify, metrics and status (failed series, throughput), and the record of sync runs.

The reads behind ``status`` are plain functions of a synchronous Core connection
(``read_*``): the Catalog runs them through its async engine (the daemon's status page).
``tcia-mirror status`` runs the same statements as stored SQL on the driver
(:mod:`mirror.catalog.statusdb`, no SQLAlchemy); a test keeps the two answers equal.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any

from sqlalchemy import String, func, insert, or_, select, update
from sqlalchemy.engine import Connection

from mirror.catalog import models
from mirror.catalog.records import SeriesRow
from mirror.catalog.statusdb import empty_status
from mirror.catalog.store import Scope, Store, in_collections, utcnow, with_names
from mirror.domain import SeriesState
from mirror.errors import STORAGE_FULL_TEXTS

C, P, ST, S, R = (models.collections, models.patients, models.studies, models.series,
                  models.sync_runs)

_ROW_COLUMNS = (
    S.c.series_uid, ST.c.study_uid, P.c.patient_id, C.c.name.label("collection"),
    # the rest of SeriesRow's fields are series columns of the same name
    *(S.c[f.name] for f in fields(SeriesRow)[4:]),
)


class ReportOps(Store):
    """Whole-catalog reads and the sync run log."""

    async def iter_series(
        self, *, states: Sequence[SeriesState], collections: Sequence[str] | Scope | None = None,
        batch: int = 1000,
    ) -> AsyncIterator[SeriesRow]:
        """Every series in *states*, in batches of short transactions.

        Keyset pagination instead of one long cursor: the caller (verify) may take
        hours, and a long-open read would pin SQLite's WAL and Postgres' snapshots.
        """
        query = (with_names(select(S.c.id, *_ROW_COLUMNS).select_from(S))
                 .where(S.c.state.in_(list(states))).order_by(S.c.id).limit(batch))
        if (only := in_collections(collections)) is not None:
            query = query.where(only)
        after = 0
        while True:
            async with self._read() as conn:
                rows = (await conn.execute(query.where(S.c.id > after))).all()
            for row in rows:
                yield SeriesRow(*row[1:])
            if len(rows) < batch:
                return
            after = rows[-1].id

    async def counts_by_state(self) -> dict[tuple[str, SeriesState], int]:
        """(collection, state) -> number of series, for metrics."""
        query = (select(C.c.name, S.c.state, func.count()).select_from(S)
                 .join(C, C.c.id == S.c.collection_id).group_by(C.c.name, S.c.state))
        async with self._read() as conn:
            return {(name, state): n for name, state, n in await conn.execute(query)}

    async def collection_status(self) -> list[dict[str, Any]]:
        """Per collection: series per state, bytes and instances on disk, poll bookkeeping."""
        async with self._read() as conn:
            return await conn.run_sync(read_collection_status)

    async def storage_full(self) -> dict[str, tuple[int, str]]:
        """Per collection: series waiting because the disk was full, and one such error."""
        async with self._read() as conn:
            return await conn.run_sync(read_storage_full)

    async def start_run(self, *, kind: str, collections: Sequence[str]) -> int:
        """Record the start of a sync, daemon cycle or verify; returns its id."""
        async with self._write() as conn:
            result = await conn.execute(
                insert(R).values(kind=kind, collections=list(collections),
                                 started_at=utcnow()).returning(R.c.id))
            return result.scalar_one()

    async def finish_run(self, run_id: int, *, outcome: str, counts: Mapping[str, int]) -> None:
        async with self._write() as conn:
            await conn.execute(update(R).where(R.c.id == run_id).values(
                finished_at=utcnow(), outcome=outcome, counts=dict(counts)))


def read_collection_status(conn: Connection) -> list[dict[str, Any]]:
    """Per collection: series per state, bytes and instances on disk, poll bookkeeping.

    The series are summed per (collection, state) before the join, from the columns
    of ``ix_series_status`` alone: an index-only scan on Postgres, a covering index
    on SQLite, never the series rows (a listing record each) nor ``instances``.
    """
    totals = (select(S.c.collection_id, S.c.state, func.count().label("n"),
                     func.sum(S.c.local_bytes).label("size"),
                     func.sum(S.c.local_instance_count).label("files"))
              .group_by(S.c.collection_id, S.c.state).subquery("totals"))
    query = (select(C.c.name, C.c.watermark, C.c.last_poll_at, C.c.last_poll_ok,
                    C.c.last_reconcile_at, totals.c.state, totals.c.n, totals.c.size,
                    totals.c.files, C.c.source, C.c.hash_checked_at, C.c.hash_changed,
                    C.c.hash_pass_started_at, C.c.hash_pass_changed)
             .select_from(C).outerjoin(totals, totals.c.collection_id == C.c.id)
             .order_by(C.c.name))
    rows = conn.execute(query).all()
    out: dict[str, dict[str, Any]] = {}
    for name, mark, poll, ok, reconcile, state, n, size, count, *hashes in rows:
        entry = out.setdefault(name, empty_status(name, mark, poll, ok, reconcile))
        entry.update(_hash_status(*hashes))
        if state is not None:
            entry[state.value] += n
            entry["series_total"] += 0 if state is SeriesState.RETIRED else n
            entry["bytes_on_disk"] += int(size or 0)
            entry["instances"] += int(count or 0)
    for name, (waiting, error) in read_storage_full(conn).items():
        if name in out:
            out[name].update(storage="full", storage_waiting=waiting, storage_error=error)
    return list(out.values())


def read_storage_full(conn: Connection) -> dict[str, tuple[int, str]]:
    """Per collection: series waiting (queued or failed) because the disk was full,
    and one such error. Read from the errors recorded with the series."""
    full = or_(*(S.c.last_error.contains(mark, autoescape=True)
                 for mark in STORAGE_FULL_TEXTS))
    query = (select(C.c.name, func.count(), func.max(S.c.last_error)).select_from(S)
             .join(C, C.c.id == S.c.collection_id)
             .where(S.c.state.in_([SeriesState.QUEUED, SeriesState.FAILED]), full)
             .group_by(C.c.name))
    return {name: (n, error) for name, n, error in conn.execute(query)}


def _hash_status(source: str | None, checked_at: datetime | None, changed: int | None,
                 pass_started: datetime | None, pass_changed: int | None) -> dict[str, Any]:
    """The source and the MD5-hierarchy check's state, for status."""
    return {
        "source": source,
        "last_hash_check": checked_at.isoformat() if checked_at else None,
        "last_hash_check_changed": changed,
        "hash_scrub_started": pass_started.isoformat() if pass_started else None,
        "hash_scrub_changed": pass_changed if pass_started else None,
    }


# --- status --failed and the status page's throughput chart (appended) ---

class FailureAndThroughputOps(Store):
    """Reads behind ``status --failed`` and the status page."""

    async def failed_series(self, *, limit: int = 1000) -> list[dict[str, Any]]:
        """Series failed for good, with their last error (:func:`read_failed_series`)."""
        async with self._read() as conn:
            return await conn.run_sync(read_failed_series, limit)

    async def committed_per_hour(self, since: datetime) -> list[dict[str, Any]]:
        """Bytes and series committed per UTC hour since *since* (see the read_ function)."""
        async with self._read() as conn:
            return await conn.run_sync(read_committed_per_hour, since)

    async def poll_errors(self) -> dict[str, str]:
        """collection -> the error of its last poll, for collections whose last poll failed."""
        async with self._read() as conn:
            return await conn.run_sync(read_poll_errors)


def read_failed_series(conn: Connection, limit: int = 1000) -> list[dict[str, Any]]:
    """Series failed for good (by collection, in discovery order), with their last error.

    The page of *limit* series is chosen first and only its rows are joined to their
    study and patient (index lookups), rather than every study and patient hashed.
    """
    page = (select(S.c.id, S.c.series_uid, S.c.study_ref, C.c.name, S.c.modality,
                   S.c.attempts, S.c.last_error, S.c.file_size)
            .join(C, C.c.id == S.c.collection_id)
            .where(S.c.state == SeriesState.FAILED)
            .order_by(C.c.name, S.c.id).limit(limit).subquery("page"))
    query = (select(page.c.series_uid, P.c.patient_id, page.c.name, page.c.modality,
                    page.c.attempts, page.c.last_error, page.c.file_size)
             .select_from(page).join(ST, ST.c.id == page.c.study_ref)
             .join(P, P.c.id == ST.c.patient_ref).order_by(page.c.name, page.c.id))
    rows = conn.execute(query).all()
    return [{"collection": name, "series_uid": uid, "patient_id": patient,
             "modality": modality, "attempts": attempts, "file_size": size,
             "last_error": error or ""}
            for uid, patient, name, modality, attempts, error, size in rows]

def read_committed_per_hour(conn: Connection, since: datetime) -> list[dict[str, Any]]:
    """Bytes and series committed per UTC hour since *since* (series size at commit).

    Built from each series' commit time (``verified_at``), so it survives restarts;
    a series committed twice (repaired) counts at its latest commit only.
    """
    if conn.dialect.name == "sqlite":  # stored as naive UTC text "YYYY-MM-DD HH:MM:SS"
        hour = func.substr(S.c.verified_at, 1, 13, type_=String)
    else:
        hour = func.to_char(func.timezone("UTC", S.c.verified_at), "YYYY-MM-DD HH24",
                            type_=String)
    query = (select(hour, func.count(), func.sum(S.c.local_bytes))
             .where(S.c.verified_at >= since).group_by(hour).order_by(hour))
    rows = conn.execute(query).all()
    return [{"hour": f"{text[:10]}T{text[11:13]}:00:00+00:00", "series": int(n),
             "bytes": int(size or 0)} for text, n, size in rows]

def read_poll_errors(conn: Connection) -> dict[str, str]:
    """collection -> the error of its last poll, for collections whose last poll failed."""
    query = select(C.c.name, C.c.last_error).where(C.c.last_error.is_not(None))
    return {name: error for name, error in conn.execute(query)}
