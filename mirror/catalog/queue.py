"""The catalog as a work queue: atomic claims with leases, heartbeats, outcomes, reaping.

A claim is one UPDATE over a sub-select of due rows: on Postgres the sub-select is
``FOR UPDATE SKIP LOCKED`` so concurrent claimers never block on or share a row; on
SQLite the write transaction starts with BEGIN IMMEDIATE, which serialises claimers.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, Row, bindparam, func, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from mirror.catalog import models
from mirror.catalog.completions import Completion, CompletionStatements, complete_batch
from mirror.catalog.groupcommit import GroupCommit
from mirror.catalog.records import ClaimedSeries, LeaseLost
from mirror.catalog.store import (
    Scope,
    Store,
    chunked,
    guarded,
    in_collections,
    utcnow,
    with_names,
)
from mirror.domain import Event, InstanceRecord, SeriesState, transition

C, P, ST, S, INST = (models.collections, models.patients, models.studies, models.series,
                     models.instances)

_CLAIMED_COLUMNS = (
    S.c.series_uid, ST.c.study_uid, P.c.patient_id, C.c.name.label("collection"),
    S.c.image_count, S.c.file_size, S.c.remote_timestamp, S.c.attempts, S.c.repair,
    S.c.local_path, S.c.local_instance_count, S.c.lease_expires_at,
    S.c.series_number, S.c.description, S.c.raw, S.c.queue_reason,
)
_RELEASED = {"lease_owner": None, "lease_expires_at": None, "needs_refetch": False}


class QueueOps(Store):
    """What workers do with the queue."""

    _completions: GroupCommit[Completion] | None = None
    _claim_cache: dict[tuple[str, ...] | Scope | None, tuple[Any, Any]] | None = None
    _statements: CompletionStatements | None = None

    async def claim(
        self, owner: str, limit: int, *, lease_seconds: float,
        collections: Sequence[str] | Scope | None = None, now: datetime | None = None,
    ) -> list[ClaimedSeries]:
        """Lease up to *limit* due QUEUED series to *owner*, oldest due first."""
        if limit <= 0:
            return []
        now = now or utcnow()
        claim, fetch = self._claim_statements(
            None if collections is None
            else collections if isinstance(collections, Scope) else tuple(collections))
        params = {"c_now": now, "c_owner": owner, "c_limit": limit,
                  "c_expires": now + timedelta(seconds=lease_seconds)}

        def run(conn: Connection) -> list[ClaimedSeries]:
            ids = list(conn.execute(claim, params).scalars())
            if not ids:
                return []
            return [ClaimedSeries(**row._mapping) for row in conn.execute(fetch, {"c_ids": ids})]

        return await self._run_write(run)

    def _claim_statements(self, collections: tuple[str, ...] | Scope | None,
                          ) -> tuple[Any, Any]:
        """The claim UPDATE and the SELECT of what was claimed, built once per filter.

        Claims run once per finished batch of series; building and cache-keying these
        statements anew each time cost more than running them.
        """
        cache = self._claim_cache
        if cache is None:
            cache = self._claim_cache = {}
        if (built := cache.get(collections)) is not None:
            return built
        where, new_state = guarded(Event.CLAIM)
        due = (select(S.c.id).where(where, S.c.next_attempt_at <= bindparam("c_now"))
               .order_by(S.c.next_attempt_at, S.c.id)
               .limit(bindparam("c_limit", type_=Integer)))
        if (only := in_collections(collections)) is not None:
            due = due.where(only)
        if self._postgres:
            due = due.with_for_update(skip_locked=True)
        # A materialized CTE runs the LIMIT once; as a plain IN (subquery) Postgres
        # may rescan it and lock (and claim) more than *limit* rows.
        due_ids = due.cte("due").prefix_with("MATERIALIZED")
        claim = (update(S).where(S.c.id.in_(select(due_ids.c.id)), where)
                 .values(state=new_state, lease_owner=bindparam("c_owner"),
                         lease_expires_at=bindparam("c_expires"),
                         attempts=S.c.attempts + 1)
                 .returning(S.c.id))
        fetch = (with_names(select(*_CLAIMED_COLUMNS).select_from(S))
                 .where(S.c.id.in_(bindparam("c_ids", expanding=True)))
                 .order_by(S.c.next_attempt_at, S.c.id))
        if len(cache) >= 16:  # one entry per collection filter in use; a daemon has one
            cache.clear()
        cache[collections] = (claim, fetch)
        return claim, fetch

    async def heartbeat(
        self, owner: str, series_uids: Sequence[str], *, lease_seconds: float,
    ) -> set[str]:
        """Extend the leases *owner* still holds; returns the uids still held."""
        expires = utcnow() + timedelta(seconds=lease_seconds)
        held: set[str] = set()
        async with self._write() as conn:
            for chunk in chunked(list(series_uids)):
                result = await conn.execute(
                    update(S).where(self._one_of(S.c.series_uid, chunk), S.c.lease_owner == owner,
                                    S.c.state == SeriesState.FETCHING)
                    .values(lease_expires_at=expires).returning(S.c.series_uid))
                held.update(result.scalars())
        return held

    async def complete(
        self, series_uid: str, owner: str, *, local_path: str,
        instances: Sequence[InstanceRecord], verified_at: datetime | None = None,
    ) -> None:
        """Commit a verified series: its instance rows, local totals, then DONE.

        If the series was re-discovered while being fetched, the files are recorded
        but the series goes back to the queue (the fetch may be stale). Series that
        finish while another commit runs are committed together in the next transaction
        (:mod:`mirror.catalog.groupcommit`); each caller still gets its own outcome.
        """
        if self._completions is None:
            self._completions = GroupCommit(self._complete_batch)
        await self._completions.submit(Completion(
            series_uid, owner, local_path, list(instances), verified_at or utcnow()))

    async def _complete_batch(self, batch: Sequence[Completion]) -> list[BaseException | None]:
        return await self._run_write(lambda conn: complete_batch(self, conn, batch))

    def _completion_statements(self) -> CompletionStatements:
        if self._statements is None:
            self._statements = CompletionStatements(self)
        return self._statements

    async def fail(
        self, series_uid: str, owner: str, *, error: str, retry_at: datetime | None,
    ) -> SeriesState:
        """Record a failed attempt: retry at *retry_at*, or give up when it is None."""
        now = utcnow()
        async with self._write() as conn:
            row = await self._leased(conn, series_uid, owner)
            values: dict[str, Any] = {"last_error": error}
            if row.needs_refetch:  # upstream changed meanwhile: the error may be stale too
                values.update(_requeued(row, Event.RETRY, now))
            elif retry_at is None:
                values.update(state=transition(row.state, Event.GIVE_UP), next_attempt_at=None)
            else:
                values.update(state=transition(row.state, Event.RETRY), next_attempt_at=retry_at)
            await self._finish(conn, row, owner, values)
        return values["state"]

    async def release(self, series_uid: str, owner: str) -> None:
        """Give a series back at shutdown: due now, and this attempt does not count."""
        async with self._write() as conn:
            row = await self._leased(conn, series_uid, owner)
            values = _requeued(row, Event.RETRY, utcnow())
            if not row.needs_refetch:
                values["attempts"] = max(row.attempts - 1, 0)
            await self._finish(conn, row, owner, values)

    async def reap_expired(self, now: datetime | None = None) -> int:
        """Queue again every series whose lease expired (its worker died or hung)."""
        now = now or utcnow()
        where, new_state = guarded(Event.RETRY)
        async with self._write() as conn:
            result = await conn.execute(
                update(S).where(where, S.c.lease_expires_at < now)
                .values(state=new_state, next_attempt_at=now, last_error="lease expired",
                        **_RELEASED))
            return result.rowcount

    async def next_due(self, collections: Sequence[str] | Scope | None = None) -> datetime | None:
        """When the earliest QUEUED series is due (None if nothing is queued)."""
        query = select(func.min(S.c.next_attempt_at)).where(S.c.state == SeriesState.QUEUED)
        if (only := in_collections(collections)) is not None:
            query = query.where(only)
        async with self._read() as conn:
            return (await conn.execute(query)).scalar_one()

    async def pending(self, collections: Sequence[str] | Scope | None = None) -> int:
        """How many series are queued or being fetched."""
        query = select(func.count()).select_from(S).where(
            S.c.state.in_([SeriesState.QUEUED, SeriesState.FETCHING]))
        if (only := in_collections(collections)) is not None:
            query = query.where(only)
        async with self._read() as conn:
            return (await conn.execute(query)).scalar_one()

    async def instances(self, series_uid: str) -> list[InstanceRecord]:
        """The stored instances of a series, as committed."""
        query = (select(INST.c.sop_uid, INST.c.path, INST.c.size, INST.c.md5,
                        INST.c.server_md5)
                 .join(S, S.c.id == INST.c.series_ref)
                 .where(S.c.series_uid == series_uid).order_by(INST.c.id))
        async with self._read() as conn:
            return [InstanceRecord(*row) for row in await conn.execute(query)]

    async def _leased(self, conn: AsyncConnection, series_uid: str, owner: str) -> Row[Any]:
        """The series row if *owner* holds its lease, locked for this transaction."""
        query = select(S.c.id, S.c.state, S.c.attempts, S.c.needs_refetch).where(
            S.c.series_uid == series_uid, S.c.lease_owner == owner)
        if self._postgres:
            query = query.with_for_update()
        row = (await conn.execute(query)).one_or_none()
        if row is None:
            raise LeaseLost(f"series {series_uid} is no longer leased to {owner}")
        return row

    async def _finish(self, conn: AsyncConnection, row: Row[Any], owner: str,
                      values: dict[str, Any]) -> None:
        result = await conn.execute(
            update(S).where(S.c.id == row.id, S.c.lease_owner == owner,
                            S.c.state == row.state).values(**values, **_RELEASED))
        if result.rowcount != 1:  # cannot happen while the row is locked; be loud if it does
            raise LeaseLost(f"series {row.id} changed under its lease holder {owner}")


def _requeued(row: Row[Any], event: Event, now: datetime) -> dict[str, Any]:
    """Values sending a leased series back to the queue, due now."""
    return {"state": transition(row.state, event), "next_attempt_at": now, "attempts": 0}

