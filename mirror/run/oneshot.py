"""``tcia-mirror sync``: one catch-up run (discover, download, verify, commit), or its dry run.

Returns a :class:`SyncResult` (or, for a dry run, a :class:`PlanReport`); printing it is
the CLI's (:mod:`mirror.run.output`). Wiring shared with the other modes comes from
:mod:`mirror.run.components`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from mirror import logs
from mirror.catalog import Catalog
from mirror.catalog.store import Scope
from mirror.config.settings import Settings
from mirror.config.sources import collection_sources
from mirror.domain import JsonObject, SeriesState
from mirror.errors import MirrorError, SourceError
from mirror.run.components import (
    by_source,
    open_components,
    open_sources,
    prepare_archive,
    resolve_names,
)
from mirror.run.progress import make_reporter
from mirror.sync import discovery, manifest_discovery, metadata_csv
from mirror.sync.changes import Applier, Apply, DryRun
from mirror.sync.manifest import Manifest
from mirror.sync.manifest_discovery import ManifestDiscovery
from mirror.sync.outcome import Outcome
from mirror.sync.planner import Plan
from mirror.sync.pool import Pool, PoolStats
from mirror.tcia import TciaClient
from mirror.tcia.ratelimit import RateLimiter

#: Plan.summary() of one collection or manifest: counts and bytes by name.
PlanSummary = dict[str, int]
#: One client per source (None: ``[source]``), see :func:`open_sources`.
Clients = dict[str | None, TciaClient]


@dataclass(frozen=True)
class SyncOptions:
    dry_run: bool = False
    reconcile: bool = False
    as_json: bool = False  # a JSON summary goes to stdout: no progress bars


@dataclass(frozen=True)
class SyncResult:
    """What a sync did: the summary (JSON data, printed as is by ``--json``)."""

    summary: JsonObject

    @property
    def exit_code(self) -> int:
        """0 in sync (or only deferred), 1 some series or collection failed."""
        return 0 if self.summary["outcome"] in ("ok", "deferred") else 1


@dataclass(frozen=True)
class PlanReport:
    """What a dry run found: the plan per collection (and ``manifest KEY``), the failures."""

    plan: dict[str, PlanSummary] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


@dataclass
class _Found:
    """Everything discovery found before downloads start."""

    plans: dict[str, Plan]
    broken: dict[str, str]  # collection (or "manifest KEY") -> why discovery failed
    hashes: dict[str, JsonObject]  # collection -> what its hash check did (JSON)
    pinned: dict[str, ManifestDiscovery]


async def run_sync(settings: Settings, options: SyncOptions) -> SyncResult | PlanReport:
    """One-shot catch-up; a dry run plans the same way and writes nothing."""
    started = datetime.now(UTC)
    manifests = manifest_discovery.load_all(settings.sync.manifests)  # a bad one: exit 2 at once
    async with open_components(settings) as (client, catalog):
        settings = await resolve_names(settings, client, catalog)
        async with open_sources(settings, client) as clients:
            if options.dry_run:
                found = await _discover(clients, catalog, settings, DryRun(), manifests,
                                        reconcile=options.reconcile)
                return _plan_report(found)
            summary = await _sync(clients, catalog, settings, options, manifests)
    summary["seconds"] = round((datetime.now(UTC) - started).total_seconds(), 3)
    return SyncResult(summary)


def _plan_report(found: _Found) -> PlanReport:
    report = {c: p.summary() for c, p in found.plans.items()}
    report.update({f"manifest {k}": m.plan.summary() for k, m in found.pinned.items()})
    return PlanReport(report, found.broken)


async def _sync(clients: Clients, catalog: Catalog, settings: Settings,
                options: SyncOptions, manifests: dict[str, Manifest]) -> JsonObject:
    collections = list(collection_sources(settings))
    scope = Scope(tuple(collections), tuple(manifests)) if manifests else collections
    await prepare_archive(settings, catalog)
    await catalog.ensure_collections(collections)
    run_id = await catalog.start_run(kind="sync", collections=collections)
    await catalog.requeue([uid for uid, _ in await _failed_in(catalog, scope)],
                          reason="new sync run")
    found = await _discover(clients, catalog, settings, Apply(catalog, settings), manifests,
                            reconcile=options.reconcile)
    changed, stats = await _download(clients, catalog, settings, options, found,
                                     manifests)
    failed = await _failed_in(catalog, scope)
    await _write_metadata(catalog, settings, found, changed)
    # deferred (due beyond sync.max_wait, still queued) is not failed: exit 0, said apart
    outcome = ("failed" if failed or found.broken else "deferred" if stats.deferred
               else "ok")
    counts = {"done": stats.done, "failed": len(failed), "retried": stats.retried,
              "bytes": stats.bytes, "deferred": len(stats.deferred)}
    await catalog.finish_run(run_id, outcome=outcome, counts=counts)
    return {"outcome": outcome, "collections": collections, **counts,
            "plan": {c: p.summary() for c, p in found.plans.items()},
            "hash_check": found.hashes,
            "failed_collections": found.broken,
            "failed_series": [uid for uid, _ in failed[:1000]],
            "errors": dict(failed[:1000]),
            "deferred_series": stats.deferred[:1000],
            **({"manifests": _manifest_summary(found.pinned)} if found.pinned else {})}


async def _download(clients: Clients, catalog: Catalog, settings: Settings,
                    options: SyncOptions, found: _Found,
                    manifests: dict[str, Manifest]) -> tuple[set[str], PoolStats]:
    """Fetch everything queued, one pool per host; returns the collections changed."""
    reporter = make_reporter(settings, {**found.plans,
                                        **{k: m.plan for k, m in found.pinned.items()}},
                             json_summary=options.as_json)
    changed: set[str] = set()

    def on_outcome(outcome: Outcome) -> None:
        if outcome.status == "done":
            changed.add(outcome.collection)
        reporter.outcome(outcome)

    stats = PoolStats()
    groups = by_source(settings)
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
    return changed, stats


async def _discover(clients: Clients, catalog: Catalog, settings: Settings,
                    apply: Applier, manifests: dict[str, Manifest], *,
                    reconcile: bool) -> _Found:
    """Poll every collection, then every manifest; one that fails is reported in
    ``broken`` and the others go on. An unreachable source or refused credentials end
    the run (exit 3): no other collection could do better."""
    log = logs.get()
    found = _Found({}, {}, {}, {})
    for source, names in by_source(settings).items():
        limiter = RateLimiter(settings.sync.hash_requests_per_second)  # per host
        for name in names:
            await apply.source(name, source)
            try:
                got = await discovery.discover(clients[source], catalog, name,
                                               settings=settings, now=datetime.now(UTC),
                                               force_full=reconcile, apply=apply,
                                               hash_limiter=limiter)
            except SourceError:
                raise
            except MirrorError as exc:
                found.broken[name] = f"{type(exc).__name__}: {exc}"
                log.warning("discovery failed", collection=name, error=found.broken[name])
                continue
            found.plans[name] = got.plan
            log.info("discovered", collection=name, mode=got.mode, **got.plan.summary())
            if got.hash is not None:
                found.hashes[name] = got.hash.summary()
                log.info("hash check", collection=name, **found.hashes[name])
    for key, manifest in manifests.items():
        try:
            pinned = await manifest_discovery.discover_manifest(
                clients[None], catalog, key, manifest, settings=settings, apply=apply)
        except SourceError:
            raise
        except MirrorError as exc:
            found.broken[f"manifest {key}"] = f"{type(exc).__name__}: {exc}"
            log.warning("discovery failed", manifest=key, error=found.broken[f"manifest {key}"])
            continue
        if pinned.missing:
            log.warning("manifest series unknown upstream", manifest=key,
                        count=len(pinned.missing), first=pinned.missing[:5])
        log.info("discovered", manifest=key, series=len(manifest.series_uids),
                 **pinned.plan.summary())
        found.pinned[key] = pinned
    return found


def _manifest_summary(pinned: dict[str, ManifestDiscovery]) -> JsonObject:
    return {key: {"collections": m.collections, "missing_count": len(m.missing),
                  "missing": m.missing[:1000],
                  **m.plan.summary()} for key, m in pinned.items()}


async def _write_metadata(catalog: Catalog, settings: Settings, found: _Found,
                          changed: set[str]) -> None:
    """Rewrite metadata.csv of every collection this run changed (or that lacks one)."""
    retired = {c for c, p in found.plans.items() if p.retire}
    for m in found.pinned.values():
        retired.update(c for c, p in m.plans.items() if p.retire)
    touched = set(collection_sources(settings)) | {c for m in found.pinned.values()
                                                for c in m.collections}
    try:
        await metadata_csv.refresh(catalog, Path(settings.archive.root), sorted(touched),
                                   changed=changed | retired)
    except MirrorError as exc:  # the series are committed; a later run that changes
        # the collection (or finds the file missing) writes it
        logs.get().warning("metadata.csv not written", error=str(exc))


async def _failed_in(catalog: Catalog,
                     collections: list[str] | Scope) -> list[tuple[str, str]]:
    """(series UID, last error) of every series failed for good in *collections*."""
    return [(row.series_uid, row.last_error or "") async for row in catalog.iter_series(
        states=[SeriesState.FAILED], collections=collections)]
