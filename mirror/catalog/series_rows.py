"""Series rows in bulk, both ways: listing rows -> the prebuilt upserts' parameter tuples,
catalog rows -> :class:`SeriesSnapshot`, with no per-row SQLAlchemy processing.

What the rows mean (queued when new, failed for a bad listing row) is decided by
:mod:`mirror.catalog.discovery`; this module only shapes them (see :mod:`.bulk`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Dialect
from sqlalchemy.dialects import postgresql, sqlite

from mirror.catalog import bulk, models
from mirror.catalog.records import SeriesSnapshot
from mirror.domain import Event, RemoteSeries, SeriesState, transition

P, ST, S = models.patients, models.studies, models.series

#: last_error of a series failed for its listing row: only a better row revives it
#: (upsert_series), never a blind retry (requeue), which would fetch it with bad data.
BAD_ROW = "bad listing row: "

#: Upstream metadata refreshed by every listing (state and local columns are not).
REMOTE_COLUMNS = (
    "collection_id", "study_ref", "modality", "image_count", "file_size",
    "remote_timestamp", "date_released", "series_number", "description", "raw",
)
#: Columns of the prebuilt upserts, in table order (their parameter order).
_INSERT_COLUMNS = {
    "series": ("series_uid", *REMOTE_COLUMNS, "discovered_at", "state", "attempts",
               "next_attempt_at", "last_error", "queue_reason", "repair", "needs_refetch"),
    "patients": ("collection_id", "patient_id"),
    "studies": ("patient_ref", "study_uid"),
}
_TABLES = {"series": S, "patients": P, "studies": ST}
_KEYS = {"patients": ["collection_id", "patient_id"], "studies": ["study_uid"]}
#: (dialect, driver, table) -> its prebuilt upsert
_PREPARED: dict[tuple[str, str, str], bulk.Prepared] = {}
SNAPSHOT_COLUMNS = (
    S.c.series_uid, S.c.state, S.c.image_count, S.c.file_size, S.c.remote_timestamp,
    S.c.local_instance_count, S.c.local_bytes, S.c.attempts,
)


def statement(dialect: Dialect, table: str) -> bulk.Prepared:
    """The prebuilt upsert of *table* for *dialect* (compiled once)."""
    key = (dialect.name, dialect.driver, table)
    if (prepared := _PREPARED.get(key)) is None:
        insert = (postgresql.insert if dialect.name == "postgresql"
                  else sqlite.insert)(_TABLES[table])
        if table == "series":
            insert = insert.on_conflict_do_update(
                index_elements=["series_uid"],
                set_={c: getattr(insert.excluded, c) for c in REMOTE_COLUMNS})
        else:
            insert = insert.on_conflict_do_nothing(index_elements=_KEYS[table])
        prepared = bulk.prepare(insert, _INSERT_COLUMNS[table], dialect)
        _PREPARED[key] = prepared
    return prepared


class RowWriter:
    """Listing rows as parameter tuples of the prebuilt series upsert (``_INSERT_COLUMNS``).

    The constant columns are converted once, dates once per distinct value.
    """

    def __init__(self, dialect: Dialect, now: datetime, failed: bool) -> None:
        self._when = bulk.converter(S.c.remote_timestamp, dialect)
        at = bulk.converter(S.c.discovered_at, dialect)(now)
        state = bulk.converter(S.c.state, dialect)(
            transition(SeriesState.QUEUED, Event.GIVE_UP) if failed else SeriesState.QUEUED)
        no = bulk.converter(S.c.repair, dialect)(False)
        # inserted straight as failed (QUEUED -> FAILED, see record_unusable), or queued
        self._queue = (at, state, 0, None if failed else at)
        self._flags = (None if failed else "new", no, no)
        self._failed = failed

    def row(self, r: RemoteSeries, collection_id: int, study_ref: int) -> tuple[Any, ...]:
        when = self._when
        return (r.series_uid, collection_id, study_ref, r.modality, r.image_count, r.file_size,
                when(r.timestamp), when(r.date_released), r.series_number, r.description,
                bulk.json_text(r.raw or None), *self._queue,
                BAD_ROW + (r.problem or "") if self._failed else None, *self._flags)


class SnapshotReader:
    """A row of ``SNAPSHOT_COLUMNS`` (selected untyped) -> SeriesSnapshot: the state
    and timestamp of 200,000 rows are converted once per distinct value."""

    def __init__(self, dialect: Dialect) -> None:
        self._state = bulk.reader(S.c.state, dialect)
        self._when = bulk.reader(S.c.remote_timestamp, dialect)

    def __call__(self, row: Sequence[Any]) -> SeriesSnapshot:
        uid, state, image_count, file_size, when, local_count, local_bytes, attempts = row[:8]
        return SeriesSnapshot(uid, self._state(state), image_count, file_size,
                              self._when(when), local_count, local_bytes, attempts)


def remote_part(r: RemoteSeries, collection_id: int, study_ref: int) -> tuple[Any, ...]:
    """The ``REMOTE_COLUMNS`` of a listing row, as the catalog reads them back."""
    return (collection_id, study_ref, r.modality, r.image_count, r.file_size, r.timestamp,
            r.date_released, r.series_number, r.description, r.raw or None)
