"""``tcia-mirror daemon``: the long-running scheduler, its workers, /healthz and /metrics.

The download-only worker (:mod:`mirror.run.worker`) is this loop without the scheduler.

Shutdown protocol: the first SIGTERM/SIGINT stops polling and claiming, lets running
downloads finish until ``[daemon] shutdown_timeout``, then cancels them (their series
go back to the queue as retryable), closes everything and exits 0. A second signal
exits at once with 130; nothing partial is ever at a final path, so that is safe too.

``/healthz`` gives the cause, not just the symptom: the last poll error per collection
(e.g. connection refused) and ``storage: full`` with the last storage error while series
wait for disk space.
"""

from __future__ import annotations

import functools
import os
import random
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
from anyio.abc import TaskGroup

from mirror import logs
from mirror.catalog import Catalog
from mirror.catalog.store import Scope
from mirror.config.settings import Settings
from mirror.config.sources import collection_sources
from mirror.domain import JsonObject
from mirror.errors import ConfigError, MirrorError, mentions_storage_full
from mirror.run.components import (
    by_source,
    open_components,
    open_sources,
    prepare_archive,
    resolve_names,
)
from mirror.run.metrics import Metrics, serve_http
from mirror.sync import discovery, manifest_discovery, metadata_csv
from mirror.sync.manifest import read_manifest
from mirror.sync.outcome import Outcome
from mirror.sync.pool import Pool
from mirror.sync.ports import EVERYTHING, Everything
from mirror.tcia import TciaClient
from mirror.tcia.ratelimit import RateLimiter

METADATA_CHECK = 1.0  # seconds between looks at whether metadata.csv needs writing
METADATA_EVERY = 600.0  # while downloads go on, rewrite changed metadata.csv this often
RESOLVE_DEADLINE = 60.0  # seconds the start-up check of collection names may take
POLL_JITTER = 0.1  # +-10% of poll_interval, so many daemons do not poll in lockstep


def next_poll_at(last_poll: datetime | None, *, interval: float, now: datetime,
                 rng: random.Random) -> datetime:
    """When a collection is due: now if never polled, else last poll + interval (jittered)."""
    if last_poll is None:
        return now
    jitter = interval * POLL_JITTER * (2 * rng.random() - 1)
    return last_poll + timedelta(seconds=interval + jitter)


class Daemon:
    def __init__(self, settings: Settings, client: TciaClient, catalog: Catalog, *,
                 with_workers: bool, with_scheduler: bool = True,
                 metrics: Metrics | None = None,
                 clients: dict[str | None, TciaClient] | None = None) -> None:
        self.settings = settings
        self.client = client
        self.catalog = catalog
        #: collection -> its source (None: [source]); one client and pool per source
        self.sources = collection_sources(settings)
        self.collections = list(self.sources)
        #: manifest key -> path; read again at every poll, so edits are picked up
        self.manifests = {manifest_discovery.manifest_key(p): p for p in settings.sync.manifests}
        self.clients = clients or {None: client}
        self.limiters = {src: RateLimiter(settings.sync.hash_requests_per_second)
                         for src in self.clients}
        self.metrics = metrics or Metrics()
        self.log = logs.get()
        self.with_scheduler = with_scheduler
        #: source -> what its pool claims from (download-only: every collection)
        groups: dict[str | None, list[str] | Scope | Everything] = {None: EVERYTHING}
        if with_scheduler:
            groups = dict(by_source(settings))
            if self.manifests:  # manifest series are fetched through [source]
                names = by_source(settings).get(None, [])
                groups[None] = Scope(tuple(names), tuple(self.manifests))
        self.pools = [Pool(client=self.clients[src], catalog=catalog, settings=settings,
                           collections=names, on_outcome=self._on_outcome)
                      for src, names in groups.items()] if with_workers else []
        self.pool = self.pools[0] if self.pools else None
        #: collections whose series changed since their metadata.csv was last written
        self.dirty: set[str] = set()
        self.stopping = anyio.Event()
        self._rng = random.Random()
        #: for /healthz: the last poll error per collection, the last full-disk error
        self.poll_errors: dict[str, str] = {}
        self.storage_error: str | None = None

    def _on_outcome(self, outcome: Outcome) -> None:
        if mentions_storage_full(outcome.error):
            self.storage_error = outcome.error
        elif outcome.status == "done":
            self.storage_error = None  # something was written: there is space again
        self.metrics.observe_outcome(outcome)
        if outcome.status == "done":
            self.dirty.add(outcome.collection)
        level = self.log.warning if outcome.error else self.log.info
        level("series", collection=outcome.collection, series_uid=outcome.series_uid,
              status=outcome.status, mode=outcome.mode, bytes=outcome.bytes,
              seconds=round(outcome.seconds, 3), attempt=outcome.attempt, error=outcome.error)

    async def run(self) -> int:
        await prepare_archive(self.settings, self.catalog, shared=True)
        if self.with_scheduler:
            await self.catalog.ensure_collections(self.collections)
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._signals, tg)
            if self.with_scheduler:
                tg.start_soon(self._poll_loop)
                tg.start_soon(self._metadata_loop)
                tg.start_soon(serve_http, self.settings.daemon.listen, self, self.stopping)
            tg.start_soon(self.metrics.refresh_loop, self.catalog, self.pool, self.stopping)
            if self.pool is not None:
                tg.start_soon(self._run_pool, tg)
            else:
                await self.stopping.wait()
                tg.cancel_scope.cancel()
        self.log.info("stopped")
        return 0

    async def _run_pool(self, tg: TaskGroup) -> None:
        async with anyio.create_task_group() as pools:
            for pool in self.pools:
                pools.start_soon(functools.partial(pool.run, until_idle=False))
        tg.cancel_scope.cancel()

    async def _signals(self, tg: TaskGroup) -> None:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for signum in signals:
                if self.stopping.is_set():
                    self.log.warning("second signal: exiting now", signal=signum)
                    os._exit(130)
                self.log.info("stopping", signal=signal.Signals(signum).name,
                              drain_seconds=self.settings.daemon.shutdown_timeout)
                self.stopping.set()
                tg.start_soon(self._drain, tg)

    async def _drain(self, tg: TaskGroup) -> None:
        for pool in self.pools:
            pool.stop()
        await anyio.sleep(self.settings.daemon.shutdown_timeout)
        self.log.warning("drain deadline passed: cancelling downloads")
        tg.cancel_scope.cancel()

    async def _poll_loop(self) -> None:
        interval = self.settings.sync.poll_interval
        due: dict[str, datetime] = {}
        for name in self.collections:
            info = await self.catalog.get_collection(name)
            due[name] = next_poll_at(info.last_poll if info else None, interval=interval,
                                     now=datetime.now(UTC), rng=self._rng)
        due.update({key: datetime.now(UTC) for key in self.manifests})
        while not self.stopping.is_set():
            name = min(due, key=due.__getitem__)
            wait = (due[name] - datetime.now(UTC)).total_seconds()
            if wait > 0:
                with anyio.move_on_after(wait):
                    await self.stopping.wait()
                continue
            await (self._poll_manifest(name) if name in self.manifests else self._poll(name))
            due[name] = next_poll_at(datetime.now(UTC), interval=interval,
                                     now=datetime.now(UTC), rng=self._rng)

    async def _poll(self, name: str) -> None:
        try:
            source = self.sources.get(name)
            await self.catalog.set_collection_source(name, source)
            found = await discovery.discover(self.clients[source], self.catalog, name,
                                             settings=self.settings, now=datetime.now(UTC),
                                             hash_limiter=self.limiters[source])
        except MirrorError as exc:
            self.poll_errors[name] = str(exc)
            self.metrics.poll_failed(name)
            self.log.warning("poll failed", collection=name, error=str(exc))
            return
        self.poll_errors.pop(name, None)
        self.metrics.poll_succeeded(name)
        self.log.info("polled", collection=name, mode=found.mode, **found.plan.summary())
        if found.hash is not None:
            self.log.info("hash check", collection=name, **found.hash.summary())
        for pool in self.pools:
            pool.wake()

    async def _poll_manifest(self, key: str) -> None:
        """Read the manifest again and look its series up; a bad file is logged, not fatal."""
        try:
            manifest = read_manifest(self.manifests[key])
            found = await manifest_discovery.discover_manifest(self.client, self.catalog, key,
                                                          manifest, settings=self.settings)
        except MirrorError as exc:
            self.log.warning("manifest poll failed", manifest=key, error=str(exc))
            return
        self.dirty.update(c for c, p in found.plans.items() if p.retire)
        self.log.info("polled", manifest=key, missing=len(found.missing),
                      **found.plan.summary())
        for pool in self.pools:
            pool.wake()

    async def _metadata_loop(self) -> None:
        """Write metadata.csv when the workers go idle, or every METADATA_EVERY while busy."""
        last = anyio.current_time()
        while not self.stopping.is_set():
            with anyio.move_on_after(METADATA_CHECK):
                await self.stopping.wait()
            idle = not any(pool.in_flight for pool in self.pools)
            if self.dirty and (idle or anyio.current_time() - last >= METADATA_EVERY):
                await self._write_metadata()
                last = anyio.current_time()

    async def _write_metadata(self) -> None:
        """metadata.csv of the collections whose series changed since the last write."""
        dirty, self.dirty = self.dirty, set()
        try:
            await metadata_csv.refresh(self.catalog, Path(self.settings.archive.root),
                                       sorted(dirty), changed=dirty)
        except MirrorError as exc:
            self.log.warning("metadata.csv not written", error=str(exc))

    async def health(self) -> tuple[bool, JsonObject]:
        """Healthy when the catalog answers and every collection polled OK recently."""
        limit = 3 * self.settings.sync.poll_interval
        now = datetime.now(UTC)
        body: JsonObject = {"collections": {}}
        try:
            infos = {n: await self.catalog.get_collection(n) for n in self.collections}
        except MirrorError as exc:
            return False, {"reason": f"catalog unreachable: {exc}"}
        reasons = []
        for name, info in infos.items():
            last = info.last_poll if info else None
            ok = bool(info and info.last_poll_ok and last
                      and (now - last).total_seconds() <= limit)
            error = self.poll_errors.get(name) or (info.last_error if info else None)
            body["collections"][name] = {
                "last_poll": last.isoformat() if last else None,
                "last_poll_ok": bool(info and info.last_poll_ok), "healthy": ok,
                "last_error": None if ok else error}
            if not ok:
                reasons.append(f"{name}: no successful poll within {limit:.0f}s"
                               + (f" (last error: {error})" if error else ""))
        body["storage"] = "full" if self.storage_error else "ok"
        if self.storage_error:
            body["storage_error"] = self.storage_error
            reasons.append(f"storage full, series wait for space: {self.storage_error}")
        if reasons:
            body["reason"] = "; ".join(reasons)
        body["status"] = "ok" if not reasons else "unhealthy"
        return not reasons, body


async def run(settings: Settings, *, with_workers: bool, with_scheduler: bool = True) -> int:
    """Run until a signal stops it (exit 0), logging as the CLI configured."""
    manifest_discovery.load_all(settings.sync.manifests)  # a malformed manifest: exit 2 now
    metrics = Metrics()
    async with open_components(settings, on_response=metrics.observe_request) as (
            client, catalog):
        if with_scheduler:
            settings = await _resolved(client, settings, catalog)
        async with open_sources(settings, client,
                                on_response=metrics.observe_request) as clients:
            return await Daemon(settings, client, catalog, with_workers=with_workers,
                                with_scheduler=with_scheduler, metrics=metrics,
                                clients=clients).run()


async def _resolved(client: TciaClient, settings: Settings, catalog: Catalog) -> Settings:
    """Collection names in the server's spelling; an unknown one is a config error (exit 2).

    A server that cannot be asked right now (or within RESOLVE_DEADLINE) does not stop a
    daemon: it keeps the names as configured and its polls report the outage.
    """
    names = None
    try:
        with anyio.move_on_after(RESOLVE_DEADLINE):
            names = await resolve_names(settings, client, catalog)
    except ConfigError:
        raise
    except MirrorError as exc:
        logs.get().warning("collection names not checked", error=str(exc))
    return settings if names is None else names
