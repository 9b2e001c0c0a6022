"""Discovery writes and reads: collections, idempotent bulk upserts, snapshots, requeue, retire."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection

from mirror.catalog import bulk, models, series_rows
from mirror.catalog.records import CollectionInfo, SeriesSnapshot
from mirror.catalog.series_rows import BAD_ROW
from mirror.catalog.store import Store, chunked, guarded, utcnow
from mirror.domain import Event, RemoteSeries, SeriesState, transition

C, P, ST, S = models.collections, models.patients, models.studies, models.series


class DiscoveryOps(Store):
    """What the scheduler records about upstream."""

    async def ensure_collections(self, names: Sequence[str]) -> None:
        """Create the named collections if they are not in the catalog yet."""
        await self._run_write(lambda conn: self._ids_of_collections(conn, set(names)))

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

        def work(conn: Connection) -> None:
            self._ids_of_collections(conn, {name})
            conn.execute(update(C).where(C.c.name == name).values(**values))

        await self._run_write(work)

    async def upsert_series(self, records: Sequence[RemoteSeries]) -> int:
        """Record a listing; new series are queued, known ones get fresh metadata only.

        Idempotent, one transaction, batched. Returns how many series were new.
        """
        unique = list({r.series_uid: r for r in records}.values())  # last listing wins
        now = utcnow()
        where, queued = guarded(Event.DISCOVER)

        def work(conn: Connection) -> int:  # one transaction, one thread hop on SQLite
            new = 0
            for chunk in chunked(unique):
                failed: list[str] = []
                new += self._upsert_chunk(conn, chunk, now, failed_before=failed)
                if failed:  # a series failed for a bad row is listed well again
                    conn.execute(
                        update(S).where(self._one_of(S.c.series_uid, failed), where,
                                        _failed_for_row())
                        .values(state=queued, attempts=0, next_attempt_at=now,
                                queue_reason="listing row fixed", last_error=None))
            return new

        return await self._run_write(work)

    async def record_unusable(self, records: Sequence[RemoteSeries]) -> int:
        """Record listing rows that cannot be fetched (``problem`` set) as failed for good,
        with the problem as their last error; a known series still queued fails too
        (one being fetched or already done keeps its state). Returns how many were new.
        """
        unique = list({r.series_uid: r for r in records}.values())
        failed = transition(SeriesState.QUEUED, Event.GIVE_UP)

        def work(conn: Connection) -> int:
            new = sum(self._upsert_chunk(conn, chunk, utcnow(), failed=True)
                      for chunk in chunked(unique))
            for r in unique:  # rare rows, each with its own reason: one statement each
                conn.execute(
                    update(S).where(S.c.series_uid == r.series_uid,
                                    S.c.state.in_([SeriesState.QUEUED, failed]))
                    .values(state=failed, last_error=BAD_ROW + (r.problem or ""),
                            next_attempt_at=None, queue_reason=None))
            return new

        return await self._run_write(work)

    async def series_snapshot(
        self, collection: str, series_uids: Collection[str] | None = None,
    ) -> dict[str, SeriesSnapshot]:
        """uid -> what the catalog knows, for one collection (optionally some uids only)."""
        columns = [bulk.untyped(c) for c in series_rows.SNAPSHOT_COLUMNS]
        uids = None if series_uids is None else list(series_uids)

        def work(conn: Connection) -> dict[str, SeriesSnapshot]:
            snap = series_rows.SnapshotReader(conn.dialect)
            if uids is None:
                query = select(*columns).join(C, C.c.id == S.c.collection_id).where(
                    C.c.name == collection)
                return {row[0]: snap(row) for row in conn.execute(query)}
            # By uid alone, the collection checked here: with the collection in the SQL,
            # SQLite walks the collection's index (every series of it, for each chunk of
            # a listing: quadratic) instead of looking the uids up.
            collection_id = conn.execute(
                select(C.c.id).where(C.c.name == collection)).scalar_one_or_none()
            by_uid = select(*columns, S.c.collection_id)
            out: dict[str, SeriesSnapshot] = {}
            for chunk in chunked(uids if collection_id is not None else []):
                rows = conn.execute(by_uid.where(self._one_of(S.c.series_uid, chunk)))
                out.update((row[0], snap(row)) for row in rows if row[-1] == collection_id)
            return out

        return await self._run_read(work)

    async def active_series(self, collection: str) -> set[str]:
        """The uids of *collection*'s series that are not retired (a full listing retires
        those it no longer lists): what ``series_snapshot`` would say, ~10x cheaper."""
        query = select(S.c.series_uid).join(C, C.c.id == S.c.collection_id).where(
            C.c.name == collection, S.c.state != SeriesState.RETIRED)
        return await self._run_read(lambda conn: set(conn.execute(query).scalars()))

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

    def _ids_of_collections(self, conn: Connection, names: set[str]) -> dict[str, int]:
        """name -> id, inserting the names the catalog does not have yet."""
        query = select(C.c.name, C.c.id).where(C.c.name.in_(sorted(names)))
        ids = dict(conn.execute(query).all())
        if len(ids) < len(names):
            now = utcnow()
            conn.execute(
                self._insert(C).on_conflict_do_nothing(index_elements=["name"]),
                [{"name": n, "created_at": now} for n in sorted(names - ids.keys())])
            ids = dict(conn.execute(query).all())
        return ids

    def _upsert_chunk(self, conn: Connection, chunk: Sequence[RemoteSeries], now: datetime,
                      *, failed: bool = False, failed_before: list[str] | None = None) -> int:
        """Upsert one chunk; returns how many series were new. The uids of the chunk
        that were already FAILED are added to *failed_before* (only they can be revived)."""
        coll = self._ids_of_collections(conn, {r.collection for r in chunk})
        patient_ids = self._ids_of_patients(
            conn, {(coll[r.collection], r.patient_id) for r in chunk})
        study_ids = self._ids_of_studies(
            conn, {r.study_uid: patient_ids[coll[r.collection], r.patient_id] for r in chunk})
        refs = [(r, coll[r.collection], study_ids[r.study_uid]) for r in chunk]
        known = self._remote_metadata(conn, [r.series_uid for r in chunk], failed_before)
        # A re-listing mostly repeats what we have: rewriting identical rows would only
        # cost time and (on Postgres) dead tuples, so only new or changed rows are sent.
        if known:
            refs = [ref for ref in refs
                    if known.get(ref[0].series_uid) != series_rows.remote_part(*ref)]
        writer = series_rows.RowWriter(conn.dialect, now, failed)
        series_rows.statement(conn.dialect, "series").run(conn, [writer.row(*r) for r in refs])
        return sum(1 for r in chunk if r.series_uid not in known)

    def _remote_metadata(self, conn: Connection, uids: list[str],
                         failed: list[str] | None = None) -> dict[str, tuple[Any, ...]]:
        """uid -> its ``REMOTE_COLUMNS`` for the known ones of *uids*; the FAILED ones
        are appended to *failed*."""
        query = select(S.c.series_uid, S.c.state,
                       *(S.c[c] for c in series_rows.REMOTE_COLUMNS)).where(
            self._one_of(S.c.series_uid, uids))
        known = {}
        for row in conn.execute(query):
            known[row[0]] = tuple(row[2:])
            if failed is not None and row[1] == SeriesState.FAILED:
                failed.append(row[0])
        return known

    def _ids_of_patients(self, conn: Connection,
                         pairs: set[tuple[int, str]]) -> dict[tuple[int, str], int]:
        query = select(P.c.collection_id, P.c.patient_id, P.c.id).where(
            self._one_of(P.c.collection_id, {c for c, _ in pairs}),
            self._one_of(P.c.patient_id, {p for _, p in pairs}))
        ids = {(c, p): i for c, p, i in conn.execute(query) if (c, p) in pairs}
        if len(ids) < len(pairs):
            series_rows.statement(conn.dialect, "patients").run(conn, sorted(pairs - ids.keys()))
            ids = {(c, p): i for c, p, i in conn.execute(query) if (c, p) in pairs}
        return ids

    def _ids_of_studies(self, conn: Connection, patient_of: dict[str, int]) -> dict[str, int]:
        query = select(ST.c.study_uid, ST.c.id).where(self._one_of(ST.c.study_uid, patient_of))
        ids = dict(conn.execute(query).all())
        if len(ids) < len(patient_of):
            series_rows.statement(conn.dialect, "studies").run(
                conn, sorted((p, s) for s, p in patient_of.items() if s not in ids))
            ids = dict(conn.execute(query).all())
        return ids


def _failed_for_row() -> Any:
    error = func.coalesce(S.c.last_error, "")  # NULL would make NOT(...) NULL, not true
    return (S.c.state == SeriesState.FAILED) & error.startswith(BAD_ROW, autoescape=True)
