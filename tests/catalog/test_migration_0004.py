"""Revision 0004 (status indexes): upgrade and downgrade on both databases, rows untouched."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, inspect, select

from mirror.catalog import Catalog, migrate, models
from mirror.catalog import engine as catalog_engine
from mirror.domain import SeriesState

NOW = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)


async def _series_indexes(url: str) -> dict[str, list[str]]:
    engine = catalog_engine.create_engine(url)
    try:
        async with engine.connect() as conn:
            found = await conn.run_sync(lambda c: inspect(c).get_indexes("series"))
    finally:
        await engine.dispose()
    return {ix["name"]: list(ix["column_names"]) for ix in found}


async def _fill(url: str) -> None:
    """One collection with a done and a failed series, written at revision 0003."""
    engine = catalog_engine.create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(models.collections.insert().values(
                id=1, name="C1", created_at=NOW))
            await conn.execute(models.patients.insert().values(
                id=1, collection_id=1, patient_id="P1"))
            await conn.execute(models.studies.insert().values(
                id=1, patient_ref=1, study_uid="1.2"))
            for sid, state in ((1, SeriesState.DONE), (2, SeriesState.FAILED)):
                await conn.execute(models.series.insert().values(
                    id=sid, series_uid=f"1.2.{sid}", collection_id=1, study_ref=1,
                    discovered_at=NOW, state=state, attempts=1, repair=False,
                    needs_refetch=False, local_bytes=1000 * sid, local_instance_count=sid,
                    verified_at=NOW - timedelta(hours=sid)))
    finally:
        await engine.dispose()


async def _series_count(url: str) -> int:
    engine = catalog_engine.create_engine(url)
    try:
        async with engine.connect() as conn:
            return (await conn.execute(select(func.count()).select_from(models.series))
                    ).scalar_one()
    finally:
        await engine.dispose()


async def test_0004_replaces_the_collection_index_and_indexes_commit_times(
        catalog_url: str) -> None:
    await migrate.upgrade(catalog_url, "0003")
    before = await _series_indexes(catalog_url)
    assert before["ix_series_collection_state"] == ["collection_id", "state"]
    assert not {"ix_series_status", "ix_series_verified_at"} & set(before)
    await _fill(catalog_url)

    await migrate.upgrade(catalog_url)
    after = await _series_indexes(catalog_url)
    assert after["ix_series_status"] == ["collection_id", "state", "local_bytes",
                                         "local_instance_count"]
    assert after["ix_series_verified_at"] == ["verified_at"]
    assert "ix_series_collection_state" not in after
    assert after["ix_series_claim"] == before["ix_series_claim"]
    catalog = await Catalog.open(catalog_url, upgrade=False)
    try:
        [row] = await catalog.collection_status()
        hours = await catalog.committed_per_hour(NOW - timedelta(hours=3))
    finally:
        await catalog.close()
    assert (row["done"], row["failed"], row["series_total"]) == (1, 1, 2)
    assert (row["bytes_on_disk"], row["instances"]) == (3000, 3)
    assert [(h["hour"], h["series"], h["bytes"]) for h in hours] == [
        ("2026-11-28T07:00:00+00:00", 1, 2000), ("2026-11-28T08:00:00+00:00", 1, 1000)]

    await migrate.downgrade(catalog_url, "0003")
    assert await _series_indexes(catalog_url) == before
    assert await migrate.current_revision(catalog_url) == "0003"
    assert await _series_count(catalog_url) == 2
