"""The queue: claims with leases, heartbeats, outcomes, release, reaping, guarded states."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from mirror.catalog import Catalog, LeaseLost, models
from mirror.catalog.store import guarded
from mirror.domain import TRANSITIONS, Event, InstanceRecord, SeriesState
from mirror.errors import CatalogError, IllegalTransition
from tests.catalog.factory import remote

FAR = datetime.now(UTC) + timedelta(days=365)


def _instances(n: int, prefix: str = "1.3.6") -> list[InstanceRecord]:
    return [InstanceRecord(f"{prefix}.{k}", f"a/{prefix}.{k}.dcm", 100 + k, f"{k:032x}")
            for k in range(n)]


async def _state(catalog: Catalog, uid: str) -> SeriesState:
    return (await catalog.series_snapshot("COLL-A", [uid]))[uid].state


async def test_claim_takes_due_series_in_order_once(catalog: Catalog) -> None:
    await catalog.upsert_series([remote(i) for i in range(10)])
    now = datetime.now(UTC) + timedelta(seconds=1)
    first = await catalog.claim("w1", 4, lease_seconds=30, now=now)
    second = await catalog.claim("w2", 100, lease_seconds=30, now=now)
    assert len(first) == 4 and len(second) == 6
    assert not {c.series_uid for c in first} & {c.series_uid for c in second}
    assert await catalog.claim("w3", 5, lease_seconds=30, now=now) == []
    one = first[0]
    assert (one.collection, one.patient_id, one.attempts) == ("COLL-A", "COLL-A-P0000", 1)
    assert one.study_uid == remote(0).study_uid
    assert one.lease_expires_at == now + timedelta(seconds=30)
    assert await catalog.pending() == 10 and await catalog.next_due() is None


async def test_claim_respects_due_time_and_collections(catalog: Catalog) -> None:
    await catalog.upsert_series([remote(0), remote(1, collection="COLL-B")])
    past = datetime.now(UTC) - timedelta(hours=1)
    assert await catalog.claim("w", 5, lease_seconds=30, now=past) == []
    [b] = await catalog.claim("w", 5, lease_seconds=30, collections=["COLL-B"])
    assert b.collection == "COLL-B"
    assert await catalog.claim("w", 5, lease_seconds=30, collections=["NO-SUCH"]) == []
    assert await catalog.pending(["COLL-A"]) == 1
    assert await catalog.claim("w", 0, lease_seconds=30) == []


async def test_failed_attempts_come_back_when_due(catalog: Catalog) -> None:
    await catalog.upsert_series([remote(0)])
    [c] = await catalog.claim("w", 1, lease_seconds=30)
    retry_at = datetime.now(UTC) + timedelta(minutes=5)
    assert await catalog.fail(c.series_uid, "w", error="503", retry_at=retry_at) \
        is SeriesState.QUEUED
    assert await catalog.next_due() == retry_at
    assert await catalog.claim("w", 1, lease_seconds=30) == []
    [again] = await catalog.claim("w", 1, lease_seconds=30,
                                  now=retry_at + timedelta(seconds=1))
    assert again.attempts == 2
    assert await catalog.fail(c.series_uid, "w", error="400 not public", retry_at=None) \
        is SeriesState.FAILED
    [row] = [r async for r in catalog.iter_series(states=[SeriesState.FAILED])]
    assert (row.last_error, row.lease_owner, row.next_attempt_at) == ("400 not public",
                                                                      None, None)


async def test_complete_replaces_instances_and_totals(catalog: Catalog) -> None:
    await catalog.upsert_series([remote(0)])
    [c] = await catalog.claim("w", 1, lease_seconds=30)
    verified = datetime(2024, 7, 1, tzinfo=UTC)
    await catalog.complete(c.series_uid, "w", local_path="C/P/S", instances=_instances(2500),
                           verified_at=verified)
    assert len(await catalog.instances(c.series_uid)) == 2500
    await catalog.requeue([c.series_uid], reason="verify", repair=True)
    [again] = await catalog.claim("w", 1, lease_seconds=30)
    assert (again.repair, again.local_path, again.local_instance_count) == (True, "C/P/S",
                                                                            2500)
    await catalog.complete(c.series_uid, "w", local_path="C/P/S",
                           instances=_instances(3, "1.3.7"))
    assert await catalog.instances(c.series_uid) == _instances(3, "1.3.7")
    [row] = [r async for r in catalog.iter_series(states=[SeriesState.DONE])]
    assert (row.local_bytes, row.local_instance_count, row.repair) == (303, 3, False)
    assert row.verified_at is not None and row.verified_at > verified
    assert await catalog.counts_by_state() == {("COLL-A", SeriesState.DONE): 1}


async def test_heartbeat_extends_only_leases_still_held(catalog: Catalog) -> None:
    await catalog.upsert_series([remote(i) for i in range(3)])
    a, b, c = await catalog.claim("w", 3, lease_seconds=30)
    await catalog.complete(c.series_uid, "w", local_path="x", instances=[])
    held = await catalog.heartbeat("w", [a.series_uid, b.series_uid, c.series_uid],
                                   lease_seconds=600)
    assert held == {a.series_uid, b.series_uid}
    assert await catalog.heartbeat("other", [a.series_uid], lease_seconds=600) == set()
    # extended beyond the original 30 s: a reap 5 minutes from now leaves them alone
    assert await catalog.reap_expired(datetime.now(UTC) + timedelta(minutes=5)) == 0


async def test_reaped_lease_is_lost_to_its_old_owner(catalog: Catalog) -> None:
    await catalog.upsert_series([remote(0)])
    [c] = await catalog.claim("w1", 1, lease_seconds=30)
    assert await catalog.reap_expired(c.lease_expires_at - timedelta(seconds=1)) == 0
    expired = c.lease_expires_at + timedelta(seconds=1)
    assert await catalog.reap_expired(expired) == 1
    assert await _state(catalog, c.series_uid) is SeriesState.QUEUED
    [again] = await catalog.claim("w2", 1, lease_seconds=30, now=expired)
    assert again.attempts == 2  # the crashed attempt counts
    for call in (
        catalog.complete(c.series_uid, "w1", local_path="x", instances=[]),
        catalog.fail(c.series_uid, "w1", error="e", retry_at=None),
        catalog.release(c.series_uid, "w1"),
    ):
        with pytest.raises(LeaseLost):
            await call
    assert await _state(catalog, c.series_uid) is SeriesState.FETCHING
    assert issubclass(LeaseLost, CatalogError)


async def test_release_requeues_without_counting_the_attempt(catalog: Catalog) -> None:
    await catalog.upsert_series([remote(0)])
    [c] = await catalog.claim("w", 1, lease_seconds=30)
    await catalog.release(c.series_uid, "w")
    [again] = await catalog.claim("w", 1, lease_seconds=30)
    assert again.attempts == 1


async def test_a_row_in_an_impossible_state_raises(catalog: Catalog) -> None:
    await catalog.upsert_series([remote(0)])
    [c] = await catalog.claim("w", 1, lease_seconds=30)
    async with catalog._write() as conn:  # simulate corruption: leased but DONE
        await conn.execute(update(models.series).values(state=SeriesState.DONE))
    with pytest.raises(IllegalTransition):
        await catalog.complete(c.series_uid, "w", local_path="x", instances=[])
    with pytest.raises(IllegalTransition):
        await catalog.fail(c.series_uid, "w", error="e", retry_at=FAR)
    assert await _state(catalog, c.series_uid) is SeriesState.DONE


@pytest.mark.parametrize("event", list(Event))
def test_guarded_updates_follow_the_transition_table(event: Event) -> None:
    where, new_state = guarded(event)
    sql = str(where.compile(compile_kwargs={"literal_binds": True}))
    sources = {s for (s, e) in TRANSITIONS if e is event}
    assert {s for s in SeriesState if f"'{s.value}'" in sql} == sources
    targets = {TRANSITIONS[(s, event)] for s in sources}
    new_sql = str(new_state.compile(compile_kwargs={"literal_binds": True}))
    assert {s for s in SeriesState if f"'{s.value}'" in new_sql} >= targets
