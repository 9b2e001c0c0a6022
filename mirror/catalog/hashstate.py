"""Catalog side of the MD5-hierarchy check: per-image MD5s by patient, and the scrub's state.

The check walks a collection's patients in ``patient_id`` order, a window at a time;
the collection row remembers where the pass under way stands (cursor, start, what it
found so far) and when the last complete pass ended and what it found.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update

from mirror.catalog import models
from mirror.catalog.store import Store
from mirror.domain import SeriesState

C, P, ST, S, INST = (models.collections, models.patients, models.studies, models.series,
                     models.instances)


@dataclass(frozen=True, slots=True)
class HashState:
    """Where a collection's hash check stands."""

    checked_at: datetime | None  #: end of the last complete pass
    changed: int | None  #: series the last complete pass found changed
    pass_started_at: datetime | None  #: start of the pass under way (None: none)
    cursor: str | None  #: last patient the pass under way checked
    pass_changed: int  #: changed series found so far by the pass under way


@dataclass(frozen=True, slots=True)
class HashRow:
    """One stored instance (or a series without any yet: sop_uid None) of a patient."""

    patient_id: str
    study_uid: str
    series_uid: str
    state: SeriesState
    sop_uid: str | None
    md5: str | None
    server_md5: str | None


class HashOps(Store):
    """Reads and writes of the MD5-hierarchy check."""

    async def hash_patients(self, collection: str, *, after: str | None,
                            limit: int) -> list[str]:
        """The next *limit* patients (by ID, after *after*) holding a series not retired."""
        query = (select(P.c.patient_id).distinct()
                 .join(C, C.c.id == P.c.collection_id)
                 .join(ST, ST.c.patient_ref == P.c.id)
                 .join(S, S.c.study_ref == ST.c.id)
                 .where(C.c.name == collection, S.c.state != SeriesState.RETIRED)
                 .order_by(P.c.patient_id).limit(limit))
        if after is not None:
            query = query.where(P.c.patient_id > after)
        async with self._read() as conn:
            return list((await conn.execute(query)).scalars())

    async def hash_patient_count(self, collection: str, *, upto: str | None = None) -> int:
        """Patients the check covers (with *upto*: those up to that ID, inclusive)."""
        query = (select(func.count(func.distinct(P.c.id)))
                 .join(C, C.c.id == P.c.collection_id)
                 .join(ST, ST.c.patient_ref == P.c.id).join(S, S.c.study_ref == ST.c.id)
                 .where(C.c.name == collection, S.c.state != SeriesState.RETIRED))
        if upto is not None:
            query = query.where(P.c.patient_id <= upto)
        async with self._read() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def hash_rows(self, collection: str, patient_ids: Sequence[str]) -> list[HashRow]:
        """Every instance MD5 of the patients' series that are not retired."""
        if not patient_ids:
            return []
        query = (select(P.c.patient_id, ST.c.study_uid, S.c.series_uid, S.c.state,
                        INST.c.sop_uid, INST.c.md5, INST.c.server_md5)
                 .select_from(S)
                 .join(ST, ST.c.id == S.c.study_ref).join(P, P.c.id == ST.c.patient_ref)
                 .join(C, C.c.id == S.c.collection_id)
                 .outerjoin(INST, INST.c.series_ref == S.c.id)
                 .where(C.c.name == collection, S.c.state != SeriesState.RETIRED,
                        self._one_of(P.c.patient_id, patient_ids)))
        async with self._read() as conn:
            return [HashRow(*row) for row in await conn.execute(query)]

    async def hash_state(self, collection: str) -> HashState | None:
        query = select(C.c.hash_checked_at, C.c.hash_changed, C.c.hash_pass_started_at,
                       C.c.hash_cursor, C.c.hash_pass_changed).where(C.c.name == collection)
        async with self._read() as conn:
            row = (await conn.execute(query)).one_or_none()
        if row is None:
            return None
        return HashState(row[0], row[1], row[2], row[3], row[4] or 0)

    async def save_hash_progress(self, collection: str, *, started_at: datetime,
                                 cursor: str | None, changed: int) -> None:
        """Record how far the pass under way got (committed after every window)."""
        await self._set(collection, hash_pass_started_at=started_at, hash_cursor=cursor,
                        hash_pass_changed=changed)

    async def finish_hash_pass(self, collection: str, *, at: datetime, changed: int) -> None:
        """A pass covered every patient: record it and start the next one from the top."""
        await self._set(collection, hash_checked_at=at, hash_changed=changed,
                        hash_pass_started_at=None, hash_cursor=None, hash_pass_changed=None)

    async def set_collection_source(self, collection: str, source: str | None) -> None:
        """Record which configured source the collection is mirrored from."""
        await self._set(collection, source=source)

    async def _set(self, collection: str, **values: Any) -> None:
        async with self._write() as conn:
            await conn.execute(update(C).where(C.c.name == collection).values(**values))
