"""B4 setup: a catalog whose every series is already mirrored, built once and copied per run.

The series rows come from tcia-mirror's own discovery (one full getSeries listing per
collection, exactly what a first sync records); only the downloads are skipped: a bulk
UPDATE marks every series done, as 100,000 claim/complete round trips would after a
real first sync. No DICOM files are on disk: a no-op resync never opens them.
"""

from __future__ import annotations

import asyncio
import shutil
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from mirror.catalog import Catalog, models
from mirror.config.settings import load_settings
from mirror.domain import SeriesState
from mirror.sync import discovery
from mirror.tcia import TciaClient

S, C = models.series, models.collections


def template_catalog(work: Path, config: Path, collections: list[str], tag: str) -> Path:
    """The in-sync catalog for this dataset, built on first use (``tag`` names the dataset)."""
    path = work / "b4" / f"catalog-{tag}.db"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    building = path.with_name(path.name + ".building")
    building.unlink(missing_ok=True)
    settings = load_settings(config, env={})
    asyncio.run(_discover(f"sqlite+aiosqlite:///{building}", settings, collections))
    mark_all_done(building)
    building.rename(path)
    return path


async def _discover(url: str, settings: object, collections: list[str]) -> None:
    catalog = await Catalog.open(url)
    try:
        await catalog.ensure_collections(collections)
        async with TciaClient(settings.source) as client:  # type: ignore[attr-defined]
            for name in collections:
                await discovery.discover(client, catalog, name, settings=settings,
                                         now=datetime.now(UTC), force_full=True)
    finally:
        await catalog.close()


def mark_all_done(db: Path) -> None:
    """What claim + complete would leave behind for every series, in one statement."""
    engine = sa.create_engine(f"sqlite:///{db}")
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(sa.update(S).values(
            state=SeriesState.DONE, attempts=1, next_attempt_at=None, queue_reason=None,
            lease_owner=None, lease_expires_at=None, last_error=None,
            local_path=sa.literal("b4/") + S.c.series_uid, local_bytes=S.c.file_size,
            local_instance_count=S.c.image_count, verified_at=now))
    engine.dispose()


def fresh_copy(template: Path, dest: Path) -> Path:
    """Copy the template and make its last poll and reconcile 'just now' (in sync today)."""
    shutil.copyfile(template, dest)
    engine = sa.create_engine(f"sqlite:///{dest}")
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(sa.update(C).values(watermark=now.date(), last_poll_at=now,
                                         last_poll_ok=True, last_reconcile_at=now,
                                         last_error=None))
    engine.dispose()
    return dest


def count_done(db: Path) -> int:
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        n = conn.execute(sa.select(sa.func.count()).select_from(S)
                         .where(S.c.state == SeriesState.DONE)).scalar_one()
    engine.dispose()
    return int(n)
