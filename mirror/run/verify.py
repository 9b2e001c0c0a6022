"""``tcia-mirror verify``: check committed series on disk against the catalog, optionally re-queue.

Returns a :class:`VerifyReport`; the CLI prints it (:func:`mirror.run.output.show_verify`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

import anyio

from mirror.archive import verify
from mirror.catalog import Catalog
from mirror.catalog.records import SeriesRow
from mirror.config.settings import Settings
from mirror.domain import SeriesState


class Damage(TypedDict):
    """One problem with a series on disk, as reported (JSON)."""

    kind: str
    sop_uid: str | None
    path: str
    detail: str


@dataclass(frozen=True)
class VerifyReport:
    checked: int
    damaged: dict[str, list[Damage]]  # series UID -> its problems
    repair: bool  # the damaged series were re-queued

    @property
    def exit_code(self) -> int:
        """1 when damage was found and left as it is; 0 otherwise."""
        return 1 if self.damaged and not self.repair else 0


async def run_verify(settings: Settings, repair: bool,
                     collections: tuple[str, ...] = ()) -> VerifyReport:
    """Check committed series on disk; with *repair*, re-queue the damaged ones.

    What the catalog holds is checked, every collection, unless *collections* names some
    (``[sync] collections`` says what to download, not what may go unchecked).
    """
    root = Path(settings.archive.root)
    catalog = await Catalog.open(settings.catalog.url, upgrade=True)
    damaged: dict[str, list[Damage]] = {}
    checked = 0
    try:
        async for row in catalog.iter_series(states=[SeriesState.DONE],
                                             collections=list(collections) or None):
            checked += 1
            problems = await _check_series(catalog, root, row)
            if problems:
                damaged[row.series_uid] = [
                    Damage(kind=p.kind, sop_uid=p.sop_uid, path=str(p.path), detail=p.detail)
                    for p in problems]
        if repair and damaged:
            await catalog.requeue(list(damaged), reason="verify found damage", repair=True)
    finally:
        await catalog.close()
    return VerifyReport(checked, damaged, repair)


async def _check_series(catalog: Catalog, root: Path, row: SeriesRow) -> list[verify.Problem]:
    if not row.local_path:
        return [verify.Problem("missing", None, root, "catalog has no local path")]
    instances = await catalog.instances(row.series_uid)
    local = root / row.local_path
    return await anyio.to_thread.run_sync(lambda: verify.check_series_on_disk(
        local, instances, series_uid=row.series_uid, study_uid=row.study_uid))
