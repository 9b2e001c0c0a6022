"""Composition root: wires config, client, catalog, scheduler and workers into sync and verify.

The daemon and the download-only worker live in :mod:`mirror.daemon`; both reuse
:func:`open_components` from here.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio

from mirror import logs, scheduler, transfer
from mirror.catalog import Catalog
from mirror.catalog.status import human_bytes
from mirror.config import Settings
from mirror.domain import SeriesState
from mirror.errors import MirrorError, SourceError, StorageError
from mirror.planner import Plan
from mirror.progress import make_reporter
from mirror.sources import collection_sources, source_settings
from mirror.tcia import TciaClient
from mirror.tcia.ratelimit import RateLimiter
from mirror.workers import Pool, PoolStats


@dataclass(frozen=True)
class SyncOptions:
    dry_run: bool = False
    reconcile: bool = False
    as_json: bool = False


@asynccontextmanager
async def open_components(settings: Settings, *, upgrade: bool = True,
                          on_response: Any = None) -> AsyncIterator[tuple[Any, Any]]:
    """The catalog (migrated) and one API client, closed on exit."""
    catalog = await Catalog.open(settings.catalog.url, upgrade=upgrade)
    try:
        async with TciaClient(settings.source, on_response=on_response) as client:
            yield client, catalog
    finally:
        await catalog.close()


async def prepare_archive(settings: Settings, catalog: Any, *,
                          shared: bool = False) -> int:
    """Crash recovery at start: clear stale staging, put expired leases back in the queue.

    A one-shot sync owns the archive and clears all staging; a daemon or worker may
    share it with other processes, so it only clears staging older than two leases.
    """
    root = Path(settings.archive.root)
    older_than = 2 * settings.sync.lease if shared else None
    try:
        await anyio.to_thread.run_sync(lambda: (
            root.mkdir(parents=True, exist_ok=True),
            transfer.clear_staging(root, older_than=older_than)))
    except OSError as exc:
        raise StorageError(f"archive root {root} is not usable: {exc.strerror}") from exc
    return await catalog.reap_expired()


async def run_sync(settings: Settings, options: SyncOptions) -> int:
    """One-shot catch-up; returns the exit code (0 in sync, 1 some series failed)."""
    logs.configure(json=None if not options.as_json else True)
    started = datetime.now(UTC)
    async with open_components(settings) as (client, catalog):
        if options.dry_run:
            return await _dry_run(client, catalog, settings, options)
        summary = await _sync(client, catalog, settings, options)
    summary["seconds"] = round((datetime.now(UTC) - started).total_seconds(), 3)
    if options.as_json:
        print(json.dumps(summary, indent=2))
    else:
        logs.get().info("sync finished", **{k: v for k, v in summary.items()
                                            if k not in ("plan", "errors")})
    return 0 if summary["outcome"] == "ok" else 1


async def _sync(client: Any, catalog: Any, settings: Settings,
                options: SyncOptions) -> dict[str, Any]:
    collections = list(collection_sources(settings))
    await prepare_archive(settings, catalog)
    await catalog.ensure_collections(collections)
    run_id = await catalog.start_run(kind="sync", collections=collections)
    await catalog.requeue([uid for uid, _ in await _failed_in(catalog, collections)],
                          reason="new sync run")
    async with open_sources(settings, client) as clients:
        plans, broken, hashes = await _discover_all(clients, catalog, settings, options)
        reporter = make_reporter(settings, plans, json_summary=options.as_json)
        stats = PoolStats()
        with reporter:
            for source, names in _by_source(settings).items():  # one pool per host
                pool = Pool(client=clients[source], catalog=catalog, settings=settings,
                            collections=names, on_outcome=reporter.outcome,
                            progress=reporter)
                got = await pool.run(until_idle=True)
                stats.done, stats.retried = stats.done + got.done, stats.retried + got.retried
                stats.bytes += got.bytes
    failed = await _failed_in(catalog, collections)
    outcome = "failed" if failed or broken else "ok"
    counts = {"done": stats.done, "failed": len(failed), "retried": stats.retried,
              "bytes": stats.bytes}
    await catalog.finish_run(run_id, outcome=outcome, counts=counts)
    return {"outcome": outcome, "collections": collections, **counts,
            "plan": {c: p.summary() for c, p in plans.items()},
            "hash_check": hashes,
            "failed_collections": broken,
            "failed_series": [uid for uid, _ in failed[:1000]],
            "errors": dict(failed[:1000])}


def _by_source(settings: Settings) -> dict[str | None, list[str]]:
    """Source name (None: [source]) -> the collections mirrored from it."""
    groups: dict[str | None, list[str]] = {}
    for collection, source in collection_sources(settings).items():
        groups.setdefault(source, []).append(collection)
    return groups


@asynccontextmanager
async def open_sources(settings: Settings, default: Any, *,
                       on_response: Any = None) -> AsyncIterator[dict[str | None, Any]]:
    """One client per source the collections use: *default* for ``[source]``, a new
    one for each ``[sources.NAME]`` (closed on exit)."""
    clients: dict[str | None, Any] = {None: default}
    async with AsyncExitStack() as stack:
        for source in _by_source(settings):
            if source is not None:
                clients[source] = await stack.enter_async_context(TciaClient(
                    source_settings(settings, source), on_response=on_response))
        yield clients


async def _discover_all(clients: dict[str | None, Any], catalog: Any, settings: Settings,
                        options: SyncOptions,
                        ) -> tuple[dict[str, Plan], dict[str, str], dict[str, Any]]:
    """Poll every collection; one that fails is reported, the others go on.

    An unreachable source or refused credentials end the run (exit 3): no other
    collection could do better. Returns the plans, the failures and what each
    collection's MD5-hierarchy check did.
    """
    log = logs.get()
    plans: dict[str, Plan] = {}
    broken: dict[str, str] = {}
    hashes: dict[str, Any] = {}
    for source, names in _by_source(settings).items():
        limiter = RateLimiter(settings.sync.hash_requests_per_second)  # per host
        for name in names:
            if not options.dry_run:
                await catalog.set_collection_source(name, source)
            try:
                found = await scheduler.discover(clients[source], catalog, name,
                                                 settings=settings, now=datetime.now(UTC),
                                                 force_full=options.reconcile,
                                                 dry_run=options.dry_run,
                                                 hash_limiter=limiter)
            except SourceError:
                raise
            except MirrorError as exc:
                broken[name] = f"{type(exc).__name__}: {exc}"
                log.warning("discovery failed", collection=name, error=broken[name])
                continue
            plans[name] = found.plan
            log.info("discovered", collection=name, mode=found.mode, **found.plan.summary())
            if found.hash is not None:
                hashes[name] = found.hash.summary()
                log.info("hash check", collection=name, **hashes[name])
    return plans, broken, hashes


async def _dry_run(client: Any, catalog: Any, settings: Settings, options: SyncOptions) -> int:
    async with open_sources(settings, client) as clients:
        plans, broken, _ = await _discover_all(clients, catalog, settings, options)
    report = {c: p.summary() for c, p in plans.items()}
    if options.as_json:
        print(json.dumps({"dry_run": True, "plan": report, "failed_collections": broken},
                         indent=2))
    else:
        for name, plan in report.items():
            print(f"{name}: add {plan['add']}, re-fetch {plan['refetch']}, repair "
                  f"{plan['repair']}, retire {plan['retire']}, unchanged {plan['unchanged']}, "
                  f"{human_bytes(plan['bytes'])} to fetch"
                  + (f", {plan['retire_held_back']} retirements held back (above "
                     f"max_delete_fraction)" if plan["retire_held_back"] else ""))
        for name, error in broken.items():
            print(f"{name}: discovery failed: {error}")
    return 1 if broken else 0


async def _failed_in(catalog: Any, collections: list[str]) -> list[tuple[str, str]]:
    """(series UID, last error) of every series failed for good in *collections*."""
    return [(row.series_uid, row.last_error or "") async for row in catalog.iter_series(
        states=[SeriesState.FAILED], collections=collections)]


async def run_verify(settings: Settings, repair: bool, as_json: bool) -> int:
    """Check every committed series on disk; with *repair*, re-queue the damaged ones."""
    root = Path(settings.archive.root)
    catalog = await Catalog.open(settings.catalog.url, upgrade=True)
    damaged: dict[str, list[dict[str, Any]]] = {}
    checked = 0
    try:
        async for row in catalog.iter_series(states=[SeriesState.DONE],
                                             collections=list(collection_sources(settings))):
            checked += 1
            problems = await _check_series(catalog, root, row)
            if problems:
                damaged[row.series_uid] = [
                    {"kind": p.kind, "sop_uid": p.sop_uid, "path": str(p.path),
                     "detail": p.detail} for p in problems]
        if repair and damaged:
            await catalog.requeue(list(damaged), reason="verify found damage", repair=True)
    finally:
        await catalog.close()
    _print_verify(checked, damaged, repair, as_json)
    return 1 if damaged and not repair else 0


async def _check_series(catalog: Any, root: Path, row: Any) -> list[Any]:
    from mirror import verify

    if not row.local_path:
        return [verify.Problem("missing", None, root, "catalog has no local path")]
    instances = await catalog.instances(row.series_uid)
    return await anyio.to_thread.run_sync(lambda: verify.check_series_on_disk(
        root / row.local_path, instances, series_uid=row.series_uid, study_uid=row.study_uid))


def _print_verify(checked: int, damaged: dict[str, list[dict[str, Any]]], repair: bool,
                  as_json: bool) -> None:
    if as_json:
        print(json.dumps({"checked": checked, "damaged": damaged, "requeued": repair}, indent=2))
        return
    for uid, problems in damaged.items():
        for p in problems:
            print(f"{uid}: {p['kind']} {p['path']} {p['detail']}")
    verdict = "re-queued for repair" if repair and damaged else "found"
    print(f"checked {checked} series; {len(damaged)} damaged {verdict}")


async def run_daemon(settings: Settings, with_workers: bool) -> int:
    from mirror import daemon

    return await daemon.run(settings, with_workers=with_workers)


async def run_worker(settings: Settings) -> int:
    from mirror import daemon

    return await daemon.run_worker_only(settings)

