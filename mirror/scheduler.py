"""Discovery per collection: full listing first and every reconcile_interval, else New* polls.

The watermark advances only after everything discovered is in the catalog, so a crash
mid-poll re-asks the same window next time.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import anyio

from mirror import layout, logs
from mirror.config import Settings
from mirror.domain import RejectedRow, RemoteSeries, SeriesState, printable
from mirror.errors import MirrorError
from mirror.planner import Plan, plan_batch, plan_retirements

BATCH = 2000


@dataclass
class Discovery:
    collection: str
    mode: str  # "full" | "incremental"
    plan: Plan


def needs_full_listing(info: Any, *, now: datetime, reconcile_interval: float,
                       force: bool) -> bool:
    """First sync, forced reconcile, or the last reconcile is older than the interval."""
    if force or info is None or info.watermark is None or info.last_reconcile is None:
        return True
    return (now - info.last_reconcile).total_seconds() >= reconcile_interval


async def discover(client: Any, catalog: Any, collection: str, *, settings: Settings,
                   now: datetime, force_full: bool = False, dry_run: bool = False) -> Discovery:
    """Poll one collection, record what is new or changed, and advance its watermark."""
    sync = settings.sync
    info = await catalog.get_collection(collection)
    full = needs_full_listing(info, now=now, reconcile_interval=sync.reconcile_interval,
                              force=force_full)
    skipped: list[RejectedRow] = []
    try:
        if full:
            plan = await _full_listing(client, catalog, collection, settings, dry_run,
                                       skipped.append)
        else:
            since = info.watermark - timedelta(days=sync.overlap_days)
            plan = await _apply(catalog, collection, _incremental_listing(
                client, collection, since, skipped.append), dry_run)
    except MirrorError as exc:
        if not dry_run:
            await catalog.record_poll(collection, at=now, ok=False, error=printable(str(exc)))
        raise
    plan.skipped_rows += len(skipped)
    if not dry_run:
        await catalog.record_poll(collection, at=now, ok=True, watermark=now.date(),
                                  reconciled=full)
    return Discovery(collection, "full" if full else "incremental", plan)


async def _full_listing(client: Any, catalog: Any, collection: str, settings: Settings,
                        dry_run: bool, on_reject: Callable[[RejectedRow], None]) -> Plan:
    seen: set[str] = set()

    async def listing() -> AsyncIterator[RemoteSeries]:
        async for record in client.iter_series(collection=collection, on_reject=on_reject):
            seen.add(record.series_uid)
            yield record

    plan = await _apply(catalog, collection, listing(), dry_run)
    snapshot = await catalog.series_snapshot(collection)
    active = {uid for uid, snap in snapshot.items() if snap.state is not SeriesState.RETIRED}
    retire = plan_retirements(active, seen, max_delete_fraction=settings.sync.max_delete_fraction)
    if retire.retire and not dry_run:
        await catalog.retire(retire.retire)
        if settings.sync.on_remote_delete == "delete":
            await _delete_retired(catalog, settings, retire.retire)
    return plan.merge(retire)


async def _incremental_listing(client: Any, collection: str, since: Any,
                               on_reject: Callable[[RejectedRow], None],
                               ) -> AsyncIterator[RemoteSeries]:
    """getSeries for every study (and new patient) that New* report since *since*."""
    patients = await client.new_patients_in_collection(collection, since)
    studies = await client.new_studies_in_patient_collection(collection, since)
    covered = {s.patient_id for s in studies}
    seen_studies: set[str] = set()
    for study in studies:
        if study.study_uid in seen_studies:
            continue
        seen_studies.add(study.study_uid)
        for record in await client.get_series(study_uid=study.study_uid,
                                              on_reject=on_reject):
            if _in_collection(record, collection):  # stored under the name it was asked by
                yield dataclasses.replace(record, collection=collection)
    for patient in patients:
        if patient.patient_id in covered:
            continue
        for record in await client.get_series(collection=collection,
                                              patient_id=patient.patient_id,
                                              on_reject=on_reject):
            yield record


def _in_collection(record: RemoteSeries, collection: str) -> bool:
    return not record.collection or record.collection.upper() == collection.upper()


async def _apply(catalog: Any, collection: str, listing: AsyncIterator[RemoteSeries],
                 dry_run: bool) -> Plan:
    plan = Plan()
    batch: list[RemoteSeries] = []
    async for record in listing:
        batch.append(record)
        if len(batch) >= BATCH:
            plan = plan.merge(await _apply_batch(catalog, collection, batch, dry_run))
            batch = []
    if batch:
        plan = plan.merge(await _apply_batch(catalog, collection, batch, dry_run))
    return plan


async def _apply_batch(catalog: Any, collection: str, batch: Sequence[RemoteSeries],
                       dry_run: bool) -> Plan:
    unique = list({r.series_uid: r for r in batch}.values())
    bad = [r for r in unique if r.problem is not None]
    unique = [r for r in unique if r.problem is None]
    snapshot = await catalog.series_snapshot(collection, [r.series_uid for r in unique])
    plan = plan_batch(unique, snapshot)
    plan.bad_rows = len(bad)
    for r in bad:
        logs.get().warning("listing row unusable", collection=collection,
                           series=r.series_uid, problem=r.problem)
    if dry_run:
        return plan
    if bad:
        await catalog.record_unusable(bad)
    await catalog.upsert_series(unique)
    revived = [uid for uid in plan.add if uid in snapshot]
    if revived or plan.refetch:
        await catalog.requeue(revived + plan.refetch, reason="new or changed upstream")
    if plan.repair:
        await catalog.requeue(plan.repair, reason="revised upstream", repair=True)
    return plan


async def _delete_retired(catalog: Any, settings: Settings, uids: Iterable[str]) -> None:
    """on_remote_delete = "delete": remove the retired series' files from the archive."""
    root = Path(settings.archive.root)
    wanted = set(uids)
    async for row in catalog.iter_series(states=[SeriesState.RETIRED]):
        if row.series_uid in wanted and row.local_path:
            target = root / row.local_path
            if layout.is_inside(root, target) and target != root:
                await anyio.to_thread.run_sync(shutil.rmtree, target, True)
