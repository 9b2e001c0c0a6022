"""Long-running modes: daemon (scheduler, workers, /healthz, /metrics) and download-only workers.

Shutdown protocol: the first SIGTERM/SIGINT stops polling and claiming, lets running
downloads finish until ``[daemon] shutdown_timeout``, then cancels them (their series
go back to the queue as retryable), closes everything and exits 0. A second signal
exits at once with 130; nothing partial is ever at a final path, so that is safe too.
"""

from __future__ import annotations

import functools
import os
import random
import signal
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
from anyio.abc import TaskGroup

from mirror import logs, scheduler
from mirror.config import Settings
from mirror.errors import MirrorError
from mirror.metrics import Metrics, serve_http
from mirror.service import open_components, open_sources, prepare_archive
from mirror.sources import collection_sources
from mirror.tcia.ratelimit import RateLimiter
from mirror.workers import Pool

POLL_JITTER = 0.1  # +-10% of poll_interval, so many daemons do not poll in lockstep


def next_poll_at(last_poll: datetime | None, *, interval: float, now: datetime,
                 rng: random.Random) -> datetime:
    """When a collection is due: now if never polled, else last poll + interval (jittered)."""
    if last_poll is None:
        return now
    jitter = interval * POLL_JITTER * (2 * rng.random() - 1)
    return last_poll + timedelta(seconds=interval + jitter)


class Daemon:
    def __init__(self, settings: Settings, client: Any, catalog: Any, *, with_workers: bool,
                 with_scheduler: bool = True, metrics: Metrics | None = None,
                 clients: dict[str | None, Any] | None = None) -> None:
        self.settings = settings
        self.client = client
        self.catalog = catalog
        #: collection -> its source (None: [source]); one client and pool per source
        self.sources = collection_sources(settings)
        self.collections = list(self.sources)
        self.clients = clients or {None: client}
        self.limiters = {src: RateLimiter(settings.sync.hash_requests_per_second)
                         for src in self.clients}
        self.metrics = metrics or Metrics()
        self.log = logs.get()
        self.with_scheduler = with_scheduler
        groups: dict[str | None, list[str] | None] = {None: None}  # download-only: every one
        if with_scheduler:
            groups = {}
            for name, src in self.sources.items():
                groups.setdefault(src, []).append(name)  # type: ignore[union-attr]
        self.pools = [Pool(client=self.clients[src], catalog=catalog, settings=settings,
                           collections=names, on_outcome=self._on_outcome)
                      for src, names in groups.items()] if with_workers else []
        self.pool = self.pools[0] if self.pools else None
        self.stopping = anyio.Event()
        self._rng = random.Random()

    def _on_outcome(self, outcome: Any) -> None:
        self.metrics.observe_outcome(outcome)
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
        while not self.stopping.is_set():
            name = min(due, key=due.__getitem__)
            wait = (due[name] - datetime.now(UTC)).total_seconds()
            if wait > 0:
                with anyio.move_on_after(wait):
                    await self.stopping.wait()
                continue
            await self._poll(name)
            due[name] = next_poll_at(datetime.now(UTC), interval=interval,
                                     now=datetime.now(UTC), rng=self._rng)

    async def _poll(self, name: str) -> None:
        try:
            source = self.sources.get(name)
            await self.catalog.set_collection_source(name, source)
            found = await scheduler.discover(self.clients[source], self.catalog, name,
                                             settings=self.settings, now=datetime.now(UTC),
                                             hash_limiter=self.limiters[source])
        except MirrorError as exc:
            self.metrics.poll_failed(name)
            self.log.warning("poll failed", collection=name, error=str(exc))
            return
        self.metrics.poll_succeeded(name)
        self.log.info("polled", collection=name, mode=found.mode, **found.plan.summary())
        if found.hash is not None:
            self.log.info("hash check", collection=name, **found.hash.summary())
        for pool in self.pools:
            pool.wake()

    async def health(self) -> tuple[bool, dict[str, Any]]:
        """Healthy when the catalog answers and every collection polled OK recently."""
        limit = 3 * self.settings.sync.poll_interval
        now = datetime.now(UTC)
        body: dict[str, Any] = {"collections": {}}
        try:
            infos = {n: await self.catalog.get_collection(n) for n in self.collections}
        except MirrorError as exc:
            return False, {"reason": f"catalog unreachable: {exc}"}
        reasons = []
        for name, info in infos.items():
            last = info.last_poll if info else None
            ok = bool(info and info.last_poll_ok and last
                      and (now - last).total_seconds() <= limit)
            body["collections"][name] = {
                "last_poll": last.isoformat() if last else None,
                "last_poll_ok": bool(info and info.last_poll_ok), "healthy": ok}
            if not ok:
                reasons.append(f"{name}: no successful poll within {limit:.0f}s")
        if reasons:
            body["reason"] = "; ".join(reasons)
        body["status"] = "ok" if not reasons else "unhealthy"
        return not reasons, body


async def run(settings: Settings, *, with_workers: bool, with_scheduler: bool = True) -> int:
    logs.configure()
    metrics = Metrics()
    async with open_components(settings, on_response=metrics.observe_request) as (
            client, catalog), open_sources(settings, client,
                                           on_response=metrics.observe_request) as clients:
        return await Daemon(settings, client, catalog, with_workers=with_workers,
                            with_scheduler=with_scheduler, metrics=metrics,
                            clients=clients).run()


async def run_worker_only(settings: Settings) -> int:
    """Download-only: claims from every collection in the shared catalog."""
    return await run(settings, with_workers=True, with_scheduler=False)
