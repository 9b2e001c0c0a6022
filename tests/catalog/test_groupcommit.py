"""Completions that arrive together share transactions; each caller still gets its own outcome."""

from __future__ import annotations

from datetime import timedelta

import anyio
from sqlalchemy import event

from mirror.catalog import Catalog, LeaseLost
from mirror.domain import InstanceRecord, SeriesState
from mirror.errors import CatalogError
from tests.catalog.factory import remote


def _instances(uid: str, n: int = 2) -> list[InstanceRecord]:
    return [InstanceRecord(f"{uid}.{k}", f"a/{uid}.{k}.dcm", 10 + k, f"{k:032x}")
            for k in range(n)]


async def _complete_all(catalog: Catalog, jobs: list[tuple[str, str, list[InstanceRecord]]],
                        ) -> dict[str, BaseException | None]:
    outcomes: dict[str, BaseException | None] = {}

    async def one(uid: str, owner: str, instances: list[InstanceRecord]) -> None:
        try:
            await catalog.complete(uid, owner, local_path=f"p/{uid}", instances=instances)
            outcomes[uid] = None
        except CatalogError as exc:
            outcomes[uid] = exc

    async with anyio.create_task_group() as tg:
        for job in jobs:
            tg.start_soon(one, *job)
    return outcomes


def _count_begins(catalog: Catalog) -> list[int]:
    begins = [0]

    @event.listens_for(catalog._engine.sync_engine, "begin")
    def _on_begin(_conn: object) -> None:
        begins[0] += 1

    return begins


async def test_concurrent_completions_share_transactions(catalog: Catalog) -> None:
    await catalog.upsert_series([remote(i) for i in range(6)])
    claimed = await catalog.claim("w", 6, lease_seconds=30)
    begins = _count_begins(catalog)
    outcomes = await _complete_all(
        catalog, [(c.series_uid, "w", _instances(c.series_uid)) for c in claimed])
    assert outcomes == {c.series_uid: None for c in claimed}
    assert begins[0] <= 2  # the first alone, the five that queued meanwhile together
    for c in claimed:
        assert await catalog.instances(c.series_uid) == _instances(c.series_uid)
    rows = [r async for r in catalog.iter_series(states=[SeriesState.DONE])]
    assert sorted((r.series_uid, r.local_path, r.local_instance_count, r.local_bytes)
                  for r in rows) == sorted((c.series_uid, f"p/{c.series_uid}", 2, 21)
                                           for c in claimed)


async def test_one_bad_completion_does_not_fail_the_batch(catalog: Catalog) -> None:
    await catalog.upsert_series([remote(i) for i in range(5)])
    a, b, c, d, e = await catalog.claim("w", 5, lease_seconds=30)
    # b's lease is reaped and claimed by another worker; d's instances collide
    # (same SOP UID twice: the unique constraint breaks its transaction)
    await catalog.heartbeat("w", [x.series_uid for x in (a, c, d, e)], lease_seconds=600)
    expired = b.lease_expires_at + timedelta(seconds=1)
    assert await catalog.reap_expired(expired) == 1
    await catalog.claim("other", 5, lease_seconds=30, now=expired)
    duplicate = _instances(d.series_uid)[:1] * 2
    outcomes = await _complete_all(catalog, [
        (a.series_uid, "w", _instances(a.series_uid)), (b.series_uid, "w", []),
        (c.series_uid, "w", _instances(c.series_uid)), (d.series_uid, "w", duplicate),
        (e.series_uid, "w", _instances(e.series_uid))])
    assert isinstance(outcomes.pop(b.series_uid), LeaseLost)
    assert isinstance(outcomes.pop(d.series_uid), CatalogError)
    assert outcomes == {a.series_uid: None, c.series_uid: None, e.series_uid: None}
    states = await catalog.series_snapshot("COLL-A", [x.series_uid for x in (a, b, c, d, e)])
    assert {uid: s.state for uid, s in states.items()} == {
        a.series_uid: SeriesState.DONE, b.series_uid: SeriesState.FETCHING,
        c.series_uid: SeriesState.DONE, d.series_uid: SeriesState.FETCHING,
        e.series_uid: SeriesState.DONE}
    assert await catalog.instances(d.series_uid) == []


async def test_a_cancelled_completion_commits_nothing_and_others_go_on(
        catalog: Catalog) -> None:
    await catalog.upsert_series([remote(i) for i in range(2)])
    first, second = await catalog.claim("w", 2, lease_seconds=30)
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: catalog.complete(first.series_uid, "w", local_path="x",
                                               instances=[]))
        with anyio.CancelScope() as scope:
            scope.cancel()
            await catalog.complete(second.series_uid, "w", local_path="y",
                                   instances=_instances(second.series_uid))
    states = await catalog.series_snapshot("COLL-A", [first.series_uid, second.series_uid])
    assert states[first.series_uid].state is SeriesState.DONE
    assert states[second.series_uid].state is SeriesState.FETCHING
    assert await catalog.instances(second.series_uid) == []
