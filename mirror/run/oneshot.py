"""Composition root: wires config, client, catalog, scheduler and workers into sync and verify.

The daemon and the download-only worker live in :mod:`mirror.run.daemon`; both reuse
:func:`open_components` from here.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio

from mirror import logs, transfer
from mirror.archive import layout, metadata_csv
from mirror.catalog import Catalog
from mirror.catalog.status import human_bytes
from mirror.catalog.store import Scope
from mirror.config.settings import Settings
from mirror.config.sources import collection_sources, source_settings, split_collection
from mirror.domain import SeriesState
from mirror.errors import ConfigError, MirrorError, SourceError
from mirror.run.progress import make_reporter, summary_text
from mirror.sync import discovery, manifest_discovery
from mirror.sync.manifest import Manifest
from mirror.sync.manifest_discovery import ManifestDiscovery
from mirror.sync.planner import Plan
from mirror.sync.pool import Pool, PoolStats
from mirror.tcia import TciaClient
from mirror.tcia.ratelimit import RateLimiter


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

    The archive root must be writable (else one ConfigError naming ``archive.root``).
    Staging is cleared only when no other live process uses this archive (see
    :func:`_claim_archive`); a daemon or worker, which may share the archive with other
    hosts, only clears staging older than two leases.
    """
    root = Path(settings.archive.root)
    older_than = 2 * settings.sync.lease if shared else None
    await anyio.to_thread.run_sync(_claim_archive, root, older_than)
    return await catalog.reap_expired()


#: One open ``.staging`` directory per archive root this process uses; its flock (shared
#: while running, exclusive only while clearing) tells other processes we are alive, and
#: the kernel drops it when we exit, however we exit.
_ARCHIVE_LOCKS: dict[str, int] = {}


def _claim_archive(root: Path, older_than: float | None) -> None:
    """Check that *root* is writable, then clear staging that no live process owns.

    Two one-shot syncs at once (an overlapping cron job) cooperate: each claims other
    series from the catalog queue, and only a process that finds no other live one
    holding the archive's lock clears ``.staging`` (everything left there then belongs
    to dead processes). Others leave it alone.
    """
    staging = layout.staging_root(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
        staging.mkdir(exist_ok=True)
        os.rmdir(tempfile.mkdtemp(prefix=".probe-", dir=staging))
    except OSError as exc:
        raise ConfigError(f"archive.root: {root} is not writable: "
                          f"{exc.strerror or exc}") from exc
    key = str(staging.resolve())
    fd = _ARCHIVE_LOCKS.get(key)
    if fd is None:
        fd = _ARCHIVE_LOCKS[key] = os.open(staging, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        alone = True
    except BlockingIOError:
        alone = False
    try:
        if alone or older_than is not None:
            transfer.clear_staging(root, older_than=older_than)
    finally:
        fcntl.flock(fd, fcntl.LOCK_SH)


async def run_sync(settings: Settings, options: SyncOptions) -> int:
    """One-shot catch-up; returns the exit code (0 in sync, 1 some series failed)."""
    logs.configure(json=None if not options.as_json else True)
    started = datetime.now(UTC)
    manifests = manifest_discovery.load_all(settings.sync.manifests)  # a bad one: exit 2 at once
    async with open_components(settings) as (client, catalog):
        settings = await resolve_names(settings, client, catalog)
        if options.dry_run:
            return await _dry_run(client, catalog, settings, options, manifests)
        summary = await _sync(client, catalog, settings, options, manifests)
    summary["seconds"] = round((datetime.now(UTC) - started).total_seconds(), 3)
    if options.as_json:
        print(json.dumps(summary, indent=2))
    else:
        if not sys.stderr.isatty():  # log collectors still get the event, as JSON
            logs.get().info("sync finished", **{k: v for k, v in summary.items()
                                                if k not in ("plan", "errors", "deferred_series")})
        print(summary_text(summary))
    return 0 if summary["outcome"] in ("ok", "deferred") else 1


async def _sync(client: Any, catalog: Any, settings: Settings, options: SyncOptions,
                manifests: dict[str, Manifest] | None = None) -> dict[str, Any]:
    collections = list(collection_sources(settings))
    manifests = manifests or {}
    scope = Scope(tuple(collections), tuple(manifests)) if manifests else collections
    await prepare_archive(settings, catalog)
    await catalog.ensure_collections(collections)
    run_id = await catalog.start_run(kind="sync", collections=collections)
    await catalog.requeue([uid for uid, _ in await _failed_in(catalog, scope)],
                          reason="new sync run")
    async with open_sources(settings, client) as clients:
        plans, broken, hashes = await _discover_all(clients, catalog, settings, options)
        pinned = await _discover_manifests(client, catalog, settings, manifests, options,
                                           broken)
        reporter = make_reporter(settings, {**plans, **{k: m.plan for k, m in pinned.items()}},
                                 json_summary=options.as_json)
        changed: set[str] = set()

        def on_outcome(outcome: Any) -> None:
            if outcome.status == "done":
                changed.add(outcome.collection)
            reporter.outcome(outcome)

        stats = PoolStats()
        groups = _by_source(settings)
        if manifests:  # manifest series are fetched through [source]
            groups.setdefault(None, [])
        with reporter:
            for source, names in groups.items():  # one pool per host
                pool = Pool(client=clients[source], catalog=catalog, settings=settings,
                            collections=(Scope(tuple(names), tuple(manifests))
                                         if source is None and manifests else names),
                            on_outcome=on_outcome, progress=reporter)
                got = await pool.run(until_idle=True)
                stats.done, stats.retried = stats.done + got.done, stats.retried + got.retried
                stats.bytes += got.bytes
                stats.deferred.extend(got.deferred)
    failed = await _failed_in(catalog, scope)
    await _write_metadata(catalog, settings, plans, pinned, changed)
    # deferred (due beyond sync.max_wait, still queued) is not failed: exit 0, said apart
    outcome = "failed" if failed or broken else "deferred" if stats.deferred else "ok"
    counts = {"done": stats.done, "failed": len(failed), "retried": stats.retried,
              "bytes": stats.bytes, "deferred": len(stats.deferred)}
    await catalog.finish_run(run_id, outcome=outcome, counts=counts)
    return {"outcome": outcome, "collections": collections, **counts,
            "plan": {c: p.summary() for c, p in plans.items()},
            "hash_check": hashes,
            "failed_collections": broken,
            "failed_series": [uid for uid, _ in failed[:1000]],
            "errors": dict(failed[:1000]),
            "deferred_series": stats.deferred[:1000],
            **({"manifests": _manifest_summary(pinned)} if pinned else {})}


async def _discover_manifests(client: Any, catalog: Any, settings: Settings,
                              manifests: dict[str, Manifest], options: SyncOptions,
                              broken: dict[str, str]) -> dict[str, ManifestDiscovery]:
    """Look up every manifest's series. One whose lookup fails is reported in *broken*
    and the others go on; an unreachable source ends the run (exit 3)."""
    log = logs.get()
    out = {}
    for key, manifest in manifests.items():
        try:
            found = await manifest_discovery.discover_manifest(client, catalog, key, manifest,
                                                          settings=settings,
                                                          dry_run=options.dry_run)
        except SourceError:
            raise
        except MirrorError as exc:
            broken[f"manifest {key}"] = f"{type(exc).__name__}: {exc}"
            log.warning("discovery failed", manifest=key, error=broken[f"manifest {key}"])
            continue
        if found.missing:
            log.warning("manifest series unknown upstream", manifest=key,
                        count=len(found.missing), first=found.missing[:5])
        log.info("discovered", manifest=key, series=len(manifest.series_uids),
                 **found.plan.summary())
        out[key] = found
    return out


def _manifest_summary(pinned: dict[str, ManifestDiscovery]) -> dict[str, Any]:
    return {key: {"collections": m.collections, "missing_count": len(m.missing),
                  "missing": m.missing[:1000],
                  **m.plan.summary()} for key, m in pinned.items()}


async def _write_metadata(catalog: Any, settings: Settings, plans: dict[str, Plan],
                          pinned: dict[str, ManifestDiscovery], changed: set[str]) -> None:
    """Rewrite metadata.csv of every collection this run changed (or that lacks one)."""
    retired = {c for c, p in plans.items() if p.retire}
    for m in pinned.values():
        retired.update(c for c, p in m.plans.items() if p.retire)
    touched = set(collection_sources(settings)) | {c for m in pinned.values()
                                                for c in m.collections}
    try:
        await metadata_csv.refresh(catalog, Path(settings.archive.root), sorted(touched),
                                   changed=changed | retired)
    except MirrorError as exc:  # the series are committed; a later run that changes
        # the collection (or finds the file missing) writes it
        logs.get().warning("metadata.csv not written", error=str(exc))


async def resolve_names(settings: Settings, client: Any, catalog: Any = None) -> Settings:
    """``[sync] collections`` in each server's own spelling, asked source by source
    (``"nlst:nlst"`` becomes ``"nlst:NLST"``); an unknown name is a ConfigError.

    A name the catalog already holds, spelled exactly so, was checked when it was first
    added: when every name is such, no request is made (a sync that is already in sync
    stays at two requests per collection).
    """
    by_source: dict[str | None, list[str]] = {}
    for entry in settings.sync.collections:
        source, name = split_collection(entry)
        by_source.setdefault(source, []).append(name)
    if catalog is not None and all([await catalog.get_collection(name) is not None
                                    for names in by_source.values() for name in names]):
        return settings
    entries: list[str] = []
    for source, names in by_source.items():
        if source is None:
            real = await discovery.resolve_collections(client, names)
        else:
            async with TciaClient(source_settings(settings, source)) as other:
                real = await discovery.resolve_collections(other, names)
        entries.extend(real if source is None else (f"{source}:{n}" for n in real))
    return settings.replace("sync", collections=tuple(entries))


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
                found = await discovery.discover(clients[source], catalog, name,
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


async def _dry_run(client: Any, catalog: Any, settings: Settings, options: SyncOptions,
                   manifests: dict[str, Manifest] | None = None) -> int:
    async with open_sources(settings, client) as clients:
        plans, broken, _ = await _discover_all(clients, catalog, settings, options)
    pinned = await _discover_manifests(client, catalog, settings, manifests or {}, options,
                                       broken)
    report = {c: p.summary() for c, p in plans.items()}
    report.update({f"manifest {k}": m.plan.summary() for k, m in pinned.items()})
    if options.as_json:
        print(json.dumps({"dry_run": True, "plan": report, "failed_collections": broken},
                         indent=2))
    else:
        for name, plan in report.items():
            print(f"{name}: add {plan['add']}, re-fetch {plan['refetch']}, repair "
                  f"{plan['repair']}, retire {plan['retire']}, unchanged {plan['unchanged']}, "
                  f"{human_bytes(plan['bytes'])} to fetch"
                  + (f", {plan['retire_held_back']} retirements held back (above "
                     f"max_delete_fraction)" if plan["retire_held_back"] else "")
                  + (f", {plan['out_of_scope']} out of scope (not fetched; "
                     f"{plan['out_of_scope_kept']} already on disk kept)"
                     if plan["out_of_scope"] else ""))
        for name, error in broken.items():
            print(f"{name}: discovery failed: {error}")
    return 1 if broken else 0


async def _failed_in(catalog: Any, collections: list[str]) -> list[tuple[str, str]]:
    """(series UID, last error) of every series failed for good in *collections*."""
    return [(row.series_uid, row.last_error or "") async for row in catalog.iter_series(
        states=[SeriesState.FAILED], collections=collections)]


async def run_verify(settings: Settings, repair: bool, as_json: bool,
                     collections: tuple[str, ...] = ()) -> int:
    """Check committed series on disk; with *repair*, re-queue the damaged ones.

    What the catalog holds is checked, every collection, unless *collections* names some
    (``[sync] collections`` says what to download, not what may go unchecked).
    """
    root = Path(settings.archive.root)
    catalog = await Catalog.open(settings.catalog.url, upgrade=True)
    damaged: dict[str, list[dict[str, Any]]] = {}
    checked = 0
    try:
        async for row in catalog.iter_series(states=[SeriesState.DONE],
                                             collections=list(collections) or None):
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
    from mirror.archive import verify

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
    from mirror.run import daemon

    return await daemon.run(settings, with_workers=with_workers)


async def run_worker(settings: Settings) -> int:
    from mirror.run import daemon

    return await daemon.run_worker_only(settings)

