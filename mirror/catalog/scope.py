"""Catalog side of subsets: forgetting queued series that a narrowed filter no longer wants."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, func

from mirror.catalog import models
from mirror.catalog.store import Store, chunked
from mirror.domain import SeriesState

S = models.series


class ScopeOps(Store):
    """Writes the ``[sync]`` filters need."""

    async def forget_unfetched(self, series_uids: Sequence[str]) -> int:
        """Delete the rows of series that are waiting and have nothing on disk.

        Not a state change: such a row only existed because an earlier, wider filter
        wanted the series, and with nothing on disk there is nothing left to track; if a
        filter takes it in again, discovery adds it like any new series. A series being
        fetched (or holding files) is left alone.
        """
        changed = 0
        async with self._write() as conn:
            for chunk in chunked(list(dict.fromkeys(series_uids))):
                result = await conn.execute(delete(S).where(
                    self._one_of(S.c.series_uid, chunk),
                    S.c.state.in_([SeriesState.QUEUED, SeriesState.FAILED]),
                    func.coalesce(S.c.local_instance_count, 0) == 0,
                    S.c.local_path.is_(None)))
                changed += result.rowcount
        return changed
