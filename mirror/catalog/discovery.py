"""Discovery writes and reads: collections, idempotent bulk upserts, snapshots, requeue, retire."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Dialect, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from mirror.catalog import bulk, models
from mirror.catalog.records import CollectionInfo, SeriesSnapshot
from mirror.catalog.store import CHUNK, Store, chunked, guarded, utcnow
from mirror.domain import Event, RemoteSeries, SeriesState, transition

C, P, ST, S = models.collections, models.patients, models.studies, models.series

#: last_error of a series failed for its listing row: only a better row revives it
#: (upsert_series), never a blind retry (requeue), which would fetch it with bad data.
BAD_ROW = "bad listing row: "

#: Upstream metadata refreshed by every listing (state and local columns are not).
_REMOTE_COLUMNS = (
    "collection_id", "study_ref", "modality", "image_count", "file_size",
    "remote_timestamp", "date_released", "series_number", "description", "raw",
)
#: Columns of the prebuilt upserts, in table order (their parameter order).
_INSERT_COLUMNS = {
    "series": ("series_uid", *_REMOTE_COLUMNS, "discovered_at", "state", "attempts",
               "next_attempt_at", "last_error", "queue_reason", "repair", "needs_refetch"),
    "patients": ("collection_id", "patient_id"),
    "studies": ("patient_ref", "study_uid"),
}
_TABLES = {"series": S, "patients": P, "studies": ST}
_KEYS = {"patients": ["collection_id", "patient_id"], "studies": ["study_uid"]}
#: (dialect, driver, table) -> its prebuilt upsert
_PREPARED: dict[tuple[str, str, str], bulk.Prepared] = {}
_SNAPSHOT_COLUMNS = (
    S.c.series_uid, S.c.state, S.c.image_count, S.c.file_size, S.c.remote_timestamp,
    S.c.local_instance_count, S.c.local_bytes, S.c.attempts,
)


class DiscoveryOps(Store):
    """What the scheduler records about upstream."""

    async def ensure_collections(self, names: Sequence[str]) -> None:
        """Create the named collections if they are not in the catalog yet."""
        async with self._write() as conn:
            await self._ids_of_collections(conn, set(names))

    async def get_collection(self, name: str) -> CollectionInfo | None:
        async with self._read() as conn:
            row = (await conn.execute(select(C).where(C.c.name == name))).one_or_none()
        if row is None:
            return None
        return CollectionInfo(
            name=row.name, watermark=row.watermark, last_poll=row.last_poll_at,
            last_poll_ok=row.last_poll_ok, last_reconcile=row.last_reconcile_at,
            last_error=row.last_error)

    async def record_poll(
        self, name: str, *, at: datetime, ok: bool, watermark: date | None = None,
        reconciled: bool = False, error: str | None = None,
    ) -> None:
        """Record a poll of *name*; the watermark moves only when one is given."""
        values: dict[str, Any] = {"last_poll_at": at, "last_poll_ok": ok, "last_error": error}
        if watermark is not None:
            values["watermark"] = watermark
        if reconciled:
            values["last_reconcile_at"] = at
        async with self._write() as conn:
            await self._ids_of_collections(conn, {name})
            await conn.execute(update(C).where(C.c.name == name).values(**values))

    async def upsert_series(self, records: Sequence[RemoteSeries]) -> int:
        """Record a listing; new series are queued, known ones get fresh metadata only.

        Idempotent, one transaction, batched. Returns how many series were new.
        """
        unique = list({r.series_uid: r for r in records}.values())  # last listing wins
        new = 0
        now = utcnow()
        where, queued = guarded(Event.DISCOVER)
        async with self._write() as conn:
            for chunk in chunked(unique):
                new += await self._upsert_chunk(conn, chunk, now)
                await conn.execute(  # a series failed for a bad row is listed well again
                    update(S).where(self._one_of(S.c.series_uid, [r.series_uid for r in chunk]),
                                    where, _failed_for_row())
                    .values(state=queued, attempts=0, next_attempt_at=now,
                            queue_reason="listing row fixed", last_error=None))
        return new

    async def record_unusable(self, records: Sequence[RemoteSeries]) -> int:
        """Record listing rows that cannot be fetched (``problem`` set) as failed for good,
        with the problem as their last error; a known series still queued fails too
        (one being fetched or already done keeps its state). Returns how many were new.
        """
        unique = list({r.series_uid: r for r in records}.values())
        failed = transition(SeriesState.QUEUED, Event.GIVE_UP)
        new = 0
        async with self._write() as conn:
            for chunk in chunked(unique):
                new += await self._upsert_chunk(conn, chunk, utcnow(), failed=True)
            for r in unique:  # rare rows, each with its own reason: one statement each
                await conn.execute(
                    update(S).where(S.c.series_uid == r.series_uid,
                                    S.c.state.in_([SeriesState.QUEUED, failed]))
                    .values(state=failed, last_error=BAD_ROW + (r.problem or ""),
                            next_attempt_at=None, queue_reason=None))
        return new

    async def series_snapshot(
        self, collection: str, series_uids: Collection[str] | None = None,
    ) -> dict[str, SeriesSnapshot]:
        """uid -> what the catalog knows, for one collection (optionally some uids only)."""
        query = select(*_SNAPSHOT_COLUMNS).join(C, C.c.id == S.c.collection_id).where(
            C.c.name == collection)
        out: dict[str, SeriesSnapshot] = {}
        async with self._read() as conn:
            if series_uids is None:
                result = await conn.stream(query.execution_options(yield_per=CHUNK))
                async for part in result.partitions():
                    out.update((row[0], SeriesSnapshot(*row)) for row in part)
                return out
            for chunk in chunked(list(series_uids)):
                rows = await conn.execute(query.where(self._one_of(S.c.series_uid, chunk)))
                out.update((row[0], SeriesSnapshot(*row)) for row in rows)
        return out

    async def requeue(
        self, series_uids: Sequence[str], *, reason: str, repair: bool = False,
    ) -> int:
        """Queue the series again now (Event.DISCOVER); returns how many rows changed.

        A series being fetched stays FETCHING but is flagged ``needs_refetch``: its
        worker's result then sends it back to the queue instead of marking it done.
        """
        where, new_state = guarded(Event.DISCOVER)
        where = where & ~_failed_for_row()
        values = {
            "state": new_state, "attempts": 0, "next_attempt_at": utcnow(),
            "queue_reason": reason[:64], "repair": repair, "last_error": None,
            "needs_refetch": S.c.state == SeriesState.FETCHING,
        }
        return await self._bulk_update(series_uids, where, values)

    async def retire(self, series_uids: Sequence[str]) -> int:
        """Mark series gone upstream (files stay); returns how many were newly retired.

        Series being fetched are skipped (the table has no FETCHING -> RETIRED edge);
        the next reconcile retires them.
        """
        where, new_state = guarded(Event.RETIRE)
        where = where & (S.c.state != SeriesState.RETIRED)
        values = {"state": new_state, "next_attempt_at": None, "queue_reason": None}
        return await self._bulk_update(series_uids, where, values)

    async def _bulk_update(
        self, series_uids: Sequence[str], where: Any, values: dict[str, Any],
    ) -> int:
        changed = 0
        async with self._write() as conn:
            for chunk in chunked(list(dict.fromkeys(series_uids))):
                result = await conn.execute(
                    update(S).where(self._one_of(S.c.series_uid, chunk), where).values(**values))
                changed += result.rowcount
        return changed

    async def _ids_of_collections(self, conn: AsyncConnection, names: set[str]) -> dict[str, int]:
        """name -> id, inserting the names the catalog does not have yet."""
        query = select(C.c.name, C.c.id).where(C.c.name.in_(sorted(names)))
        ids = dict((await conn.execute(query)).all())
        if len(ids) < len(names):
            now = utcnow()
            await conn.execute(
                self._insert(C).on_conflict_do_nothing(index_elements=["name"]),
                [{"name": n, "created_at": now} for n in sorted(names - ids.keys())])
            ids = dict((await conn.execute(query)).all())
        return ids

    async def _upsert_chunk(
        self, conn: AsyncConnection, chunk: Sequence[RemoteSeries], now: datetime,
        *, failed: bool = False,
    ) -> int:
        coll = await self._ids_of_collections(conn, {r.collection for r in chunk})
        patient_ids = await self._ids_of_patients(
            conn, {(coll[r.collection], r.patient_id) for r in chunk})
        study_ids = await self._ids_of_studies(
            conn, {r.study_uid: patient_ids[coll[r.collection], r.patient_id] for r in chunk})
        refs = [(r, coll[r.collection], study_ids[r.study_uid]) for r in chunk]
        known = await self._remote_metadata(conn, [r.series_uid for r in chunk])
        # A re-listing mostly repeats what we have: rewriting identical rows would only
        # cost time and (on Postgres) dead tuples, so only new or changed rows are sent.
        if known:
            refs = [ref for ref in refs if known.get(ref[0].series_uid) != _remote_part(*ref)]
        rows = _RowWriter(conn.dialect, now, failed)
        await self._statement(conn, "series").run(conn, [rows.row(*ref) for ref in refs])
        return sum(1 for r in chunk if r.series_uid not in known)

    @staticmethod
    def _statement(conn: AsyncConnection, table: str) -> bulk.Prepared:
        """The prebuilt upsert of *table* for this connection's dialect (compiled once)."""
        key = (conn.dialect.name, conn.dialect.driver, table)
        if (prepared := _PREPARED.get(key)) is None:
            insert = (postgresql.insert if conn.dialect.name == "postgresql"
                      else sqlite.insert)(_TABLES[table])
            if table == "series":
                insert = insert.on_conflict_do_update(
                    index_elements=["series_uid"],
                    set_={c: getattr(insert.excluded, c) for c in _REMOTE_COLUMNS})
            else:
                insert = insert.on_conflict_do_nothing(index_elements=_KEYS[table])
            prepared = bulk.prepare(insert, _INSERT_COLUMNS[table], conn.dialect)
            _PREPARED[key] = prepared
        return prepared

    async def _remote_metadata(
        self, conn: AsyncConnection, uids: list[str],
    ) -> dict[str, tuple[Any, ...]]:
        query = select(S.c.series_uid, *(S.c[c] for c in _REMOTE_COLUMNS)).where(
            self._one_of(S.c.series_uid, uids))
        return {row[0]: tuple(row[1:]) for row in await conn.execute(query)}

    async def _ids_of_patients(
        self, conn: AsyncConnection, pairs: set[tuple[int, str]],
    ) -> dict[tuple[int, str], int]:
        query = select(P.c.collection_id, P.c.patient_id, P.c.id).where(
            self._one_of(P.c.collection_id, {c for c, _ in pairs}),
            self._one_of(P.c.patient_id, {p for _, p in pairs}))
        ids = {(c, p): i for c, p, i in await conn.execute(query) if (c, p) in pairs}
        if len(ids) < len(pairs):
            await self._statement(conn, "patients").run(conn, sorted(pairs - ids.keys()))
            ids = {(c, p): i for c, p, i in await conn.execute(query) if (c, p) in pairs}
        return ids

    async def _ids_of_studies(
        self, conn: AsyncConnection, patient_of: dict[str, int],
    ) -> dict[str, int]:
        query = select(ST.c.study_uid, ST.c.id).where(self._one_of(ST.c.study_uid, patient_of))
        ids = dict((await conn.execute(query)).all())
        if len(ids) < len(patient_of):
            await self._statement(conn, "studies").run(
                conn, sorted((p, s) for s, p in patient_of.items() if s not in ids))
            ids = dict((await conn.execute(query)).all())
        return ids


def _failed_for_row() -> Any:
    error = func.coalesce(S.c.last_error, "")  # NULL would make NOT(...) NULL, not true
    return (S.c.state == SeriesState.FAILED) & error.startswith(BAD_ROW, autoescape=True)


class _RowWriter:
    """Listing rows as parameter tuples of the prebuilt series upsert (``_INSERT_COLUMNS``).

    The constant columns are converted once, dates once per distinct value.
    """

    def __init__(self, dialect: Dialect, now: datetime, failed: bool) -> None:
        self._when = bulk.converter(S.c.remote_timestamp, dialect)
        state = transition(SeriesState.QUEUED, Event.GIVE_UP) if failed else SeriesState.QUEUED
        at, flag = bulk.converter(S.c.discovered_at, dialect)(now), bulk.converter(S.c.repair,
                                                                                    dialect)
        self._queue = (at, bulk.converter(S.c.state, dialect)(state), 0,
                       None if failed else at)
        self._flags = (None if failed else "new", flag(False), flag(False))
        self._failed = failed

    def row(self, r: RemoteSeries, collection_id: int, study_ref: int) -> tuple[Any, ...]:
        when = self._when
        return (r.series_uid, collection_id, study_ref, r.modality, r.image_count, r.file_size,
                when(r.timestamp), when(r.date_released), r.series_number, r.description,
                bulk.json_text(r.raw or None), *self._queue,
                BAD_ROW + (r.problem or "") if self._failed else None, *self._flags)


def _remote_part(r: RemoteSeries, collection_id: int, study_ref: int) -> tuple[Any, ...]:
    """The ``_REMOTE_COLUMNS`` of a listing row, as the catalog reads them back."""
    return (collection_id, study_ref, r.modality, r.image_count, r.file_size, r.timestamp,
            r.date_released, r.series_number, r.description, r.raw or None)
