"""Manifest pins and the reads metadata.csv and manifest export need.

A pin says "manifest M lists series S": the series itself lives in its real collection
like any other; the pin only puts it in the scope of M's syncs (claims, withdrawals).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam, delete, func, select, update

from mirror.catalog import models
from mirror.catalog.store import CHUNK, Store, chunked, with_names
from mirror.domain import SeriesState

C, P, ST, S, PIN = (models.collections, models.patients, models.studies, models.series,
                    models.manifest_series)


@dataclass(frozen=True, slots=True)
class PinnedSeries:
    """What a manifest sync needs to know about a pinned series the catalog has."""

    series_uid: str
    study_uid: str
    collection: str
    state: SeriesState


class PinOps(Store):
    """Pins per manifest, and whole-archive reads by collection."""

    async def set_pins(self, manifest: str, series_uids: Sequence[str]) -> None:
        """Make *series_uids* exactly the pins of *manifest* (one transaction)."""
        wanted = list(dict.fromkeys(series_uids))
        async with self._write() as conn:
            current = set((await conn.execute(
                select(PIN.c.series_uid).where(PIN.c.manifest == manifest))).scalars())
            keep = set(wanted)
            gone = [uid for uid in current if uid not in keep]
            for chunk in chunked(gone):
                await conn.execute(delete(PIN).where(
                    PIN.c.manifest == manifest, self._one_of(PIN.c.series_uid, chunk)))
            new = [{"manifest": manifest, "series_uid": uid} for uid in wanted
                   if uid not in current]
            for chunk in chunked(new):
                await conn.execute(PIN.insert(), list(chunk))

    async def known_series(self, series_uids: Sequence[str]) -> dict[str, PinnedSeries]:
        """uid -> what the catalog has, for those of *series_uids* it has a row for."""
        query = with_names(select(S.c.series_uid, ST.c.study_uid, C.c.name, S.c.state)
                           .select_from(S))
        out: dict[str, PinnedSeries] = {}
        async with self._read() as conn:
            for chunk in chunked(list(series_uids)):
                rows = await conn.execute(query.where(self._one_of(S.c.series_uid, chunk)))
                out.update((row[0], PinnedSeries(*row)) for row in rows)
        return out

    async def done_series_uids(self, collections: Sequence[str] | None = None,
                               ) -> AsyncIterator[tuple[str, str]]:
        """(collection, series UID) of every DONE series, by collection then UID."""
        query = (select(C.c.name, S.c.series_uid).join(C, C.c.id == S.c.collection_id)
                 .where(S.c.state == SeriesState.DONE).order_by(C.c.name, S.c.series_uid))
        if collections is not None:
            query = query.where(C.c.name.in_(list(collections)))
        async with self._read() as conn:
            result = await conn.stream(query.execution_options(yield_per=CHUNK))
            async for name, uid in result:
                yield name, uid

    async def set_sop_classes(self, values: Mapping[str, str]) -> None:
        """Record the SOP Class UID read from each series' stored files (one statement)."""
        if not values:
            return
        query = (update(S).where(S.c.series_uid == bindparam("b_uid"))
                 .values(sop_class_uid=bindparam("b_class")))
        params = [{"b_uid": uid, "b_class": sop_class[:64]} for uid, sop_class in values.items()]
        async with self._write() as conn:
            await conn.execute(query, params)

    async def first_instance_paths(self, series_uids: Sequence[str]) -> dict[str, str]:
        """Series UID -> relative path of its first stored instance (for a header read).

        One query per chunk of UIDs: metadata.csv asks this for every series that has
        no SOP class yet, thousands at a time on a first sync.
        """
        inst = models.instances
        out: dict[str, str] = {}
        async with self._read() as conn:
            for part in chunked(list(series_uids)):
                first = (select(func.min(inst.c.id).label("id"))
                         .join(S, S.c.id == inst.c.series_ref)
                         .where(S.c.series_uid.in_(list(part)))
                         .group_by(inst.c.series_ref).subquery())
                query = (select(S.c.series_uid, inst.c.path)
                         .join(S, S.c.id == inst.c.series_ref)
                         .where(inst.c.id.in_(select(first.c.id))))
                out.update({uid: path for uid, path in await conn.execute(query)})
        return out
