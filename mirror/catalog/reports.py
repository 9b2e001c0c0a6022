"""Reads for verify and metrics, and the record of sync runs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import fields

from sqlalchemy import func, insert, select, update

from mirror.catalog import models
from mirror.catalog.records import SeriesRow
from mirror.catalog.store import Store, in_collections, utcnow, with_names
from mirror.domain import SeriesState

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
        self, *, states: Sequence[SeriesState], collections: Sequence[str] | None = None,
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
