"""Discovery per collection: full listing first and every reconcile_interval, else New* polls.

The watermark advances only after everything discovered is in the catalog, so a crash
mid-poll re-asks the same window next time.
"""

from __future__ import annotations

import dataclasses
import difflib
import shutil
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import anyio

from mirror import logs
from mirror.archive import layout
from mirror.config.settings import Settings
from mirror.domain import RejectedRow, RemoteSeries, SeriesState, printable
from mirror.errors import ConfigError, MirrorError
from mirror.sync import filters, hashcheck, hashtree, planner
from mirror.sync.planner import Plan, plan_batch, plan_retirements
from mirror.tcia.ratelimit import RateLimiter

BATCH = 2000


@dataclass
class Discovery:
    collection: str
    mode: str  # "full" | "incremental"
    plan: Plan
    #: what the MD5-hierarchy check did (nbia-v4 only; None when it did not run)
    hash: hashcheck.HashReport | None = None


def needs_full_listing(info: Any, *, now: datetime, reconcile_interval: float,
                       force: bool) -> bool:
    """First sync, forced reconcile, or the last reconcile is older than the interval."""
    if force or info is None or info.watermark is None or info.last_reconcile is None:
        return True
    return (now - info.last_reconcile).total_seconds() >= reconcile_interval


async def discover(client: Any, catalog: Any, collection: str, *, settings: Settings,
                   now: datetime, force_full: bool = False, dry_run: bool = False,
                   hash_limiter: Any = None) -> Discovery:
    """Poll one collection, record what is new or changed, and advance its watermark.

    Then, on nbia-v4, the MD5-hierarchy check: a full pass when *force_full*
    (``sync --reconcile``), else the rolling scrub's share for the time since the last
    poll. *hash_limiter* paces its requests (one per source, shared by its collections).
    """
    sync = settings.sync
    root = Path(settings.archive.root)
    scope = filters.scope_for(sync, collection)
    # a changed filter is planned from a full listing: a widened one must find series
    # that no incremental poll would report again
    rescope = await anyio.to_thread.run_sync(filters.remembered, root, collection) != scope.key()
    info = await catalog.get_collection(collection)
    full = needs_full_listing(info, now=now, reconcile_interval=sync.reconcile_interval,
                              force=force_full or rescope)
    skipped: list[RejectedRow] = []
    try:
        if full:
            plan = await _full_listing(client, catalog, collection, settings, dry_run,
                                       skipped.append, scope)
        else:
            since = info.watermark - timedelta(days=sync.overlap_days)
            plan = await _apply(catalog, collection, _incremental_listing(
                client, collection, since, skipped.append), dry_run,
                scope, day_only=_day_only(client))
    except MirrorError as exc:
        if not dry_run:
            await catalog.record_poll(collection, at=now, ok=False, error=printable(str(exc)))
        raise
    plan.skipped_rows += len(skipped)
    if not dry_run:
        await catalog.record_poll(collection, at=now, ok=True, watermark=now.date(),
                                  reconciled=full)
        if rescope:  # written when the filter changed, not at every poll
            await anyio.to_thread.run_sync(filters.remember, root, collection, scope)
    report = None
    # The server hashes every series of a patient; with a subset filter the catalog holds
    # only some of them, so the hashes could never agree: filtered collections are not
    # hash-checked (README "Subsets").
    if (hashcheck.supported(client) and scope.everything and info is not None
            and info.watermark is not None):
        report = await _hash_check(client, catalog, collection, settings, now=now,
                                   full=force_full, dry_run=dry_run, limiter=hash_limiter)
        plan = plan.merge(Plan(repair=list(report.changed)))
    return Discovery(collection, "full" if full else "incremental", plan, report)


async def _hash_check(client: Any, catalog: Any, collection: str, settings: Settings,
                      *, now: datetime, full: bool, dry_run: bool,
                      limiter: Any) -> hashcheck.HashReport:
    """A full hash pass, or the rolling scrub's share: every patient once per
    reconcile_interval, in proportion to the time the pass under way has run."""
    quota = None
    if not full:
        state = await catalog.hash_state(collection)
        started = state.pass_started_at if state and state.pass_started_at else now
        cursor = state.cursor if state and state.pass_started_at else None
        quota = hashtree.scrub_quota(
            await catalog.hash_patient_count(collection),
            done=0 if cursor is None else await catalog.hash_patient_count(collection,
                                                                           upto=cursor),
            since_start=(now - started).total_seconds(),
            reconcile_interval=settings.sync.reconcile_interval)
    limiter = limiter or RateLimiter(settings.sync.hash_requests_per_second)
    return await hashcheck.check_collection(client, catalog, collection, limiter=limiter,
                                            now=now, quota=quota, dry_run=dry_run)


async def _full_listing(client: Any, catalog: Any, collection: str, settings: Settings,
                        dry_run: bool, on_reject: Callable[[RejectedRow], None],
                        scope: filters.Scope = filters.EVERYTHING) -> Plan:
    seen: set[str] = set()  # filtered out or not: a series still listed is never retired

    async def listing() -> AsyncIterator[RemoteSeries]:
        async for record in client.iter_series(collection=collection, on_reject=on_reject):
            seen.add(record.series_uid)
            yield record

    plan = await _apply(catalog, collection, listing(), dry_run, scope,
                        day_only=_day_only(client))
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


def _day_only(client: Any) -> bool:
    """Whether the client's dialect lists timestamps to the day only (v4)."""
    return planner.day_only(getattr(client, "api", ""))


async def _apply(catalog: Any, collection: str, listing: AsyncIterator[RemoteSeries],
                 dry_run: bool, scope: filters.Scope = filters.EVERYTHING, *,
                 day_only: bool = False) -> Plan:
    plan = Plan()
    batch: list[RemoteSeries] = []
    async for record in listing:
        batch.append(record)
        if len(batch) >= BATCH:
            plan = plan.merge(await _apply_scoped(catalog, collection, batch, dry_run, scope,
                                                      day_only))
            batch = []
    if batch:
        plan = plan.merge(await _apply_scoped(catalog, collection, batch, dry_run, scope,
                                                      day_only))
    return plan


async def _apply_scoped(catalog: Any, collection: str, batch: Sequence[RemoteSeries],
                        dry_run: bool, scope: filters.Scope, day_only: bool = False) -> Plan:
    """Plan the series the filter keeps; count (and dequeue) the ones it leaves out."""
    if scope.everything:
        return await _apply_batch(catalog, collection, batch, dry_run, day_only)
    kept, dropped = filters.split({r.series_uid: r for r in batch}.values(), scope)
    plan = (await _apply_batch(catalog, collection, kept, dry_run, day_only) if kept
            else Plan())
    if not dropped:
        return plan
    snapshot = await catalog.series_snapshot(collection, [r.series_uid for r in dropped])
    on_disk = {uid for uid, snap in snapshot.items() if snap.local_instance_count}
    waiting = [uid for uid in snapshot if uid not in on_disk]
    if waiting and not dry_run:
        await catalog.forget_unfetched(waiting)
    return plan.merge(Plan(out_of_scope=len(dropped), out_of_scope_kept=len(on_disk)))


async def _apply_batch(catalog: Any, collection: str, batch: Sequence[RemoteSeries],
                       dry_run: bool, day_only: bool = False) -> Plan:
    unique = list({r.series_uid: r for r in batch}.values())
    bad = [r for r in unique if r.problem is not None]
    unique = [r for r in unique if r.problem is None]
    snapshot = await catalog.series_snapshot(collection, [r.series_uid for r in unique])
    plan = plan_batch(unique, snapshot, day_only=day_only)
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


# Public names for the manifest scope (mirror.sync.manifest_discovery), which records its
# listings and retirements exactly like a collection's.
apply_batch = _apply_batch
delete_retired = _delete_retired
async def resolve_collections(client: Any, names: Sequence[str]) -> list[str]:
    """Each configured name in the server's own spelling (matched case-insensitively).

    A name the server does not offer (``getCollectionValues``) is refused with a
    did-you-mean, before it can become an empty collection that is "in sync" forever;
    ``sim-lung`` becomes ``SIM-LUNG`` instead of a second collection.
    """
    if not names:
        return []
    offered = [name for name in await client.get_collection_values() if isinstance(name, str)]
    by_fold = {name.casefold(): name for name in offered}
    resolved: list[str] = []
    for name in names:
        real = by_fold.get(name.casefold())
        if real is None:
            close = difflib.get_close_matches(name.casefold(), list(by_fold), n=1, cutoff=0.6)
            hint = f"; did you mean {by_fold[close[0]]!r}?" if close else ""
            raise ConfigError(f"sync.collections: the server has no collection "
                              f"{name[:100]!r}{hint}")
        if real not in resolved:
            resolved.append(real)
    return resolved
