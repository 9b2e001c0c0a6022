"""Discovery writes: idempotent bulk upserts, snapshots, requeue, retire, polls."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from mirror.catalog import Catalog, models
from mirror.domain import InstanceRecord, SeriesState
from tests.catalog.factory import T0, remote


async def test_upsert_is_idempotent_and_counts_new_series(catalog: Catalog) -> None:
    listing = [remote(i) for i in range(2500)]  # more than one statement chunk
    assert await catalog.upsert_series(listing) == 2500
    assert await catalog.upsert_series(listing) == 0
    assert await catalog.upsert_series([*listing[:10], remote(2500)]) == 1
    snapshot = await catalog.series_snapshot("COLL-A")
    assert len(snapshot) == 2501
    assert {s.state for s in snapshot.values()} == {SeriesState.QUEUED}
    assert await catalog.pending() == 2501


async def test_upsert_refreshes_metadata_but_not_state(catalog: Catalog) -> None:
    await catalog.upsert_series([remote(0), remote(1)])
    [claimed] = await catalog.claim("w", 1, lease_seconds=60)
    later = T0 + timedelta(days=3)
    await catalog.upsert_series([remote(0, image_count=99, file_size=7, timestamp=later),
                                 remote(1, image_count=98)])
    snapshot = await catalog.series_snapshot("COLL-A")
    assert snapshot[claimed.series_uid].state is SeriesState.FETCHING
    assert snapshot[remote(0).series_uid].image_count == 99
    assert snapshot[remote(0).series_uid].file_size == 7
    assert snapshot[remote(0).series_uid].remote_timestamp == later
    assert snapshot[remote(1).series_uid].image_count == 98


async def test_snapshot_is_per_collection_and_can_be_narrowed(catalog: Catalog) -> None:
    await catalog.upsert_series([remote(i) for i in range(5)]
                                + [remote(i, collection="COLL-B") for i in range(5, 8)])
    assert len(await catalog.series_snapshot("COLL-B")) == 3
    paged = [r.series_uid async for r in catalog.iter_series(
        states=[SeriesState.QUEUED], collections=["COLL-B"], batch=2)]
    assert paged == [remote(i, collection="COLL-B").series_uid for i in range(5, 8)]
    assert await catalog.next_due(["NO-SUCH"]) is None
    assert await catalog.next_due(["COLL-B"]) is not None
    assert await catalog.series_snapshot("NO-SUCH") == {}
    some = await catalog.series_snapshot("COLL-A", [remote(1).series_uid, "9.9.9"])
    assert list(some) == [remote(1).series_uid]
    snap = some[remote(1).series_uid]
    assert (snap.image_count, snap.attempts, snap.local_bytes) == (11, 0, None)
    assert snap.remote_timestamp == T0 and snap.remote_timestamp.tzinfo is not None


async def test_requeue_done_and_failed_and_flag_fetching(catalog: Catalog) -> None:
    await catalog.upsert_series([remote(i) for i in range(3)])
    a, b, c = await catalog.claim("w", 3, lease_seconds=60)
    await catalog.complete(a.series_uid, "w", local_path="p/a", instances=[])
    await catalog.fail(b.series_uid, "w", error="400 not public", retry_at=None)
    changed = await catalog.requeue([a.series_uid, b.series_uid, c.series_uid],
                                    reason="changed", repair=True)
    assert changed == 3
    snap = await catalog.series_snapshot("COLL-A")
    assert snap[a.series_uid].state is SeriesState.QUEUED
    assert snap[b.series_uid].state is SeriesState.QUEUED
    assert snap[c.series_uid].state is SeriesState.FETCHING
    # the running fetch of c is stale: its result must not mark it done
    await catalog.complete(c.series_uid, "w", local_path="p/c",
                           instances=[InstanceRecord("1.9.1", "p/c/1.9.1.dcm", 5, "0" * 32)])
    after = (await catalog.series_snapshot("COLL-A", [c.series_uid]))[c.series_uid]
    assert after.state is SeriesState.QUEUED
    assert (after.local_instance_count, after.local_bytes, after.attempts) == (1, 5, 0)
    reclaimed = await catalog.claim("w2", 10, lease_seconds=60)
    assert {r.series_uid for r in reclaimed} == {a.series_uid, b.series_uid, c.series_uid}
    assert all(r.repair for r in reclaimed)


async def test_retire_skips_series_being_fetched(catalog: Catalog) -> None:
    await catalog.upsert_series([remote(i) for i in range(3)])
    [fetching] = await catalog.claim("w", 1, lease_seconds=60)
    uids = [remote(i).series_uid for i in range(3)]
    assert await catalog.retire(uids) == 2
    assert await catalog.retire(uids) == 0  # already retired: nothing new
    snap = await catalog.series_snapshot("COLL-A")
    assert snap[fetching.series_uid].state is SeriesState.FETCHING
    assert sorted(s.state for s in snap.values()) == [
        SeriesState.FETCHING, SeriesState.RETIRED, SeriesState.RETIRED]
    assert await catalog.next_due() is None  # retired series are not due


async def test_record_poll_moves_the_watermark_only_when_given(catalog: Catalog) -> None:
    await catalog.ensure_collections(["COLL-A", "COLL-B"])
    assert (await catalog.get_collection("COLL-B")).watermark is None  # type: ignore[union-attr]
    first = datetime(2024, 6, 1, 8, 30, tzinfo=UTC)
    await catalog.record_poll("COLL-A", at=first, ok=True, watermark=date(2024, 5, 31),
                              reconciled=True)
    second = first + timedelta(hours=1)
    await catalog.record_poll("COLL-A", at=second, ok=False, error="503 from source")
    info = await catalog.get_collection("COLL-A")
    assert info is not None
    assert info.watermark == date(2024, 5, 31)
    assert (info.last_poll, info.last_poll_ok, info.last_error) == (second, False,
                                                                    "503 from source")
    assert info.last_reconcile == first
    assert await catalog.get_collection("NO-SUCH") is None


async def test_names_are_stored_as_given(catalog: Catalog) -> None:
    odd = remote(1, collection="Odd / Name ..", patient_id="../P 1\\x")
    await catalog.upsert_series([odd])
    [claimed] = await catalog.claim("w", 1, lease_seconds=60)
    assert (claimed.collection, claimed.patient_id) == ("Odd / Name ..", "../P 1\\x")


async def test_sync_runs_are_recorded(catalog: Catalog) -> None:
    first = await catalog.start_run(kind="sync", collections=["COLL-A"])
    second = await catalog.start_run(kind="verify", collections=[])
    assert second != first
    await catalog.finish_run(first, outcome="ok", counts={"added": 3})
    async with catalog._read() as conn:
        row = (await conn.execute(select(models.sync_runs).where(
            models.sync_runs.c.id == first))).one()
    assert (row.kind, row.outcome, row.counts, row.collections) == (
        "sync", "ok", {"added": 3}, ["COLL-A"])
    assert row.finished_at >= row.started_at
