"""Discovery per collection: full listing first and every reconcile_interval, else New* polls.

Discovery reads the server and the catalog and plans; every write it leads to goes
through the :class:`~mirror.sync.changes.Applier` it is given (a dry run passes
:class:`~mirror.sync.changes.DryRun`). The watermark advances only after everything
discovered is in the catalog, so a crash mid-poll re-asks the same window next time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import anyio

from mirror import logs
from mirror.config.settings import Settings
from mirror.domain import (
    RejectedRow,
    RemotePatient,
    RemoteSeries,
    RemoteStudy,
    printable,
)
from mirror.errors import MirrorError
from mirror.sync import filters, hashcheck, hashtree, planner
from mirror.sync.changes import Applier, Apply, BatchChanges, WritableCatalog
from mirror.sync.gcpace import few_collections
from mirror.sync.planner import Plan, plan_batch, plan_retirements
from mirror.sync.ports import HashCatalog, HashSource
from mirror.tcia.ratelimit import RateLimiter

if TYPE_CHECKING:
    from mirror.catalog.hashstate import HashState
    from mirror.catalog.records import CollectionInfo, SeriesSnapshot

BATCH = 2000

OnReject = Callable[[RejectedRow], None]


class ListingClient(HashSource, Protocol):
    """The server, as discovery asks it (the real one: :class:`mirror.tcia.TciaClient`),
    listings and the MD5 hierarchy."""

    @property
    def api(self) -> str: ...
    def iter_series(self, collection: str | None = None, *,
                    on_reject: OnReject | None = None) -> AsyncIterator[RemoteSeries]: ...
    async def get_series(self, collection: str | None = None, patient_id: str | None = None,
                         study_uid: str | None = None, series_uid: str | None = None, *,
                         on_reject: OnReject | None = None) -> list[RemoteSeries]: ...
    async def new_patients_in_collection(self, collection: str,
                                         since: date) -> list[RemotePatient]: ...
    async def new_studies_in_patient_collection(self, collection: str,
                                                since: date) -> list[RemoteStudy]: ...


class DiscoveryCatalog(WritableCatalog, HashCatalog, Protocol):
    """The catalog as discovery reads it, plus the writes :class:`Apply` makes (the real
    one: :class:`mirror.catalog.Catalog`; the hash check reads its hash state too)."""

    async def get_collection(self, name: str) -> CollectionInfo | None: ...
    async def series_snapshot(self, collection: str, series_uids: Collection[str] | None = None,
                              ) -> dict[str, SeriesSnapshot]: ...
    async def active_series(self, collection: str) -> set[str]: ...
    async def hash_state(self, collection: str) -> HashState | None: ...
    async def hash_patient_count(self, collection: str, *, upto: str | None = None) -> int: ...


@dataclass
class Discovery:
    collection: str
    mode: str  # "full" | "incremental"
    plan: Plan
    #: what the MD5-hierarchy check did (nbia-v4 only; None when it did not run)
    hash: hashcheck.HashReport | None = None


def needs_full_listing(info: CollectionInfo | None, *, now: datetime,
                       reconcile_interval: float, force: bool) -> bool:
    """First sync, forced reconcile, or the last reconcile is older than the interval."""
    if force or info is None or info.watermark is None or info.last_reconcile is None:
        return True
    return (now - info.last_reconcile).total_seconds() >= reconcile_interval


async def discover(client: ListingClient, catalog: DiscoveryCatalog, collection: str, *,
                   settings: Settings, now: datetime, force_full: bool = False,
                   apply: Applier | None = None,
                   hash_limiter: RateLimiter | None = None) -> Discovery:
    """Poll one collection, record what is new or changed, and advance its watermark.

    *apply* writes what the poll found (default: to *catalog*; a dry run passes
    :class:`~mirror.sync.changes.DryRun`). Then, on nbia-v4, the MD5-hierarchy check: a
    full pass when *force_full* (``sync --reconcile``), else the rolling scrub's share for
    the time since the last poll. *hash_limiter* paces its requests (one per source,
    shared by its collections).
    """
    apply = apply or Apply(catalog, settings)
    sync = settings.sync
    scope = filters.scope_for(sync, collection)
    # a changed filter is planned from a full listing: a widened one must find series
    # that no incremental poll would report again
    remembered = await anyio.to_thread.run_sync(filters.remembered,
                                                Path(settings.archive.root), collection)
    rescope = remembered != scope.key()
    info = await catalog.get_collection(collection)
    full = needs_full_listing(info, now=now, reconcile_interval=sync.reconcile_interval,
                              force=force_full or rescope)
    skipped: list[RejectedRow] = []
    try:
        if full:
            plan = await full_listing(client, catalog, collection, settings, skipped.append,
                                      scope, apply=apply)
        else:
            assert info is not None and info.watermark is not None  # else it is full
            since = info.watermark - timedelta(days=sync.overlap_days)
            plan = await _Poll(catalog, apply, collection, scope, _day_only(client)).record(
                _incremental_listing(client, collection, since, skipped.append))
    except MirrorError as exc:
        await apply.poll(collection, at=now, ok=False, error=printable(str(exc)))
        raise
    plan.skipped_rows += len(skipped)
    await apply.poll(collection, at=now, ok=True, watermark=now.date(), reconciled=full)
    if rescope:  # written when the filter changed, not at every poll
        await apply.remember_scope(collection, scope)
    report = None
    # The server hashes every series of a patient; with a subset filter the catalog holds
    # only some of them, so the hashes could never agree: filtered collections are not
    # hash-checked (README "Subsets").
    if (hashcheck.supported(client) and scope.everything and info is not None
            and info.watermark is not None):
        report = await _hash_check(client, catalog, collection, settings, now=now,
                                   full=force_full, dry_run=not apply.writes,
                                   limiter=hash_limiter)
        plan = plan.merge(Plan(repair=list(report.changed)))
    return Discovery(collection, "full" if full else "incremental", plan, report)


async def _hash_check(client: ListingClient, catalog: DiscoveryCatalog, collection: str,
                      settings: Settings, *, now: datetime, full: bool, dry_run: bool,
                      limiter: RateLimiter | None) -> hashcheck.HashReport:
    """A full hash pass, or the rolling scrub's share: every patient once per
    reconcile_interval, in proportion to the time the pass under way has run.

    *dry_run* is the hash check's own flag (:mod:`mirror.sync.hashcheck` writes its
    progress itself), taken from the applier, not passed around."""
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


async def full_listing(client: ListingClient, catalog: DiscoveryCatalog, collection: str,
                       settings: Settings, on_reject: OnReject,
                       scope: filters.Scope = filters.EVERYTHING, *,
                       apply: Applier | None = None) -> Plan:
    """Plan (and have *apply* write) a full listing: every series, and retirements."""
    poll = _Poll(catalog, apply or Apply(catalog, settings), collection, scope,
                 _day_only(client))
    return await poll.full_listing(client, on_reject, settings)


def _day_only(client: ListingClient) -> bool:
    """Whether the client's dialect lists timestamps to the day only (v4); a test's fake
    client may have no dialect at all."""
    return planner.day_only(getattr(client, "api", ""))


@dataclass
class _Poll:
    """One collection's listing, planned batch by batch and handed to *apply*."""

    catalog: DiscoveryCatalog
    apply: Applier
    collection: str
    scope: filters.Scope = filters.EVERYTHING
    day_only: bool = False

    async def full_listing(self, client: ListingClient, on_reject: OnReject,
                           settings: Settings) -> Plan:
        seen: set[str] = set()  # filtered out or not: a series still listed is never retired

        async def listing() -> AsyncIterator[RemoteSeries]:
            async for record in client.iter_series(collection=self.collection,
                                                   on_reject=on_reject):
                seen.add(record.series_uid)
                yield record

        plan = await self.record(listing())
        active = await self.catalog.active_series(self.collection)
        retire = plan_retirements(active, seen,
                                  max_delete_fraction=settings.sync.max_delete_fraction)
        await self.apply.retire(retire.retire)
        return plan.merge(retire)

    async def record(self, listing: AsyncIterator[RemoteSeries]) -> Plan:
        """Plan and apply *listing* in batches of :data:`BATCH`."""
        plan = Plan()
        batch: list[RemoteSeries] = []
        with few_collections():
            async for record in listing:
                batch.append(record)
                if len(batch) >= BATCH:
                    plan = plan.merge(await self._scoped(batch))
                    batch = []
            if batch:
                plan = plan.merge(await self._scoped(batch))
        return plan

    async def _scoped(self, batch: Sequence[RemoteSeries]) -> Plan:
        """Plan the series the filter keeps; count (and dequeue) the ones it leaves out."""
        if self.scope.everything:
            return await record_batch(self.catalog, self.apply, self.collection, batch,
                                      self.day_only)
        kept, dropped = filters.split({r.series_uid: r for r in batch}.values(), self.scope)
        plan = (await record_batch(self.catalog, self.apply, self.collection, kept,
                                   self.day_only) if kept else Plan())
        if not dropped:
            return plan
        snapshot = await self.catalog.series_snapshot(self.collection,
                                                      [r.series_uid for r in dropped])
        on_disk = {uid for uid, snap in snapshot.items() if snap.local_instance_count}
        await self.apply.forget([uid for uid in snapshot if uid not in on_disk])
        return plan.merge(Plan(out_of_scope=len(dropped), out_of_scope_kept=len(on_disk)))


async def _incremental_listing(client: ListingClient, collection: str, since: date,
                               on_reject: OnReject) -> AsyncIterator[RemoteSeries]:
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


async def plan_listed(catalog: DiscoveryCatalog, collection: str,
                      batch: Sequence[RemoteSeries], day_only: bool = False,
                      ) -> tuple[Plan, BatchChanges]:
    """The plan of one batch of listed series and the catalog changes it makes."""
    unique = list({r.series_uid: r for r in batch}.values())
    bad = [r for r in unique if r.problem is not None]
    unique = [r for r in unique if r.problem is None]
    snapshot = await catalog.series_snapshot(collection, [r.series_uid for r in unique])
    plan = plan_batch(unique, snapshot, day_only=day_only)
    plan.bad_rows = len(bad)
    for r in bad:
        logs.get().warning("listing row unusable", collection=collection,
                           series=r.series_uid, problem=r.problem)
    revived = [uid for uid in plan.add if uid in snapshot]
    return plan, BatchChanges(unusable=bad, upsert=unique, requeue=revived + plan.refetch,
                              repair=list(plan.repair))


async def record_batch(catalog: DiscoveryCatalog, apply: Applier, collection: str,
                       batch: Sequence[RemoteSeries], day_only: bool = False) -> Plan:
    """Plan one batch of listed series, then have *apply* write it (also for manifests)."""
    plan, changes = await plan_listed(catalog, collection, batch, day_only)
    await apply.batch(changes)
    return plan
