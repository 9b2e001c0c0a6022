"""Prometheus metrics (counting the events the logs report) and the /healthz + /metrics server."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Sized
from typing import TYPE_CHECKING, Protocol

import anyio
from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    disable_created_metrics,
    generate_latest,
)

from mirror.domain import JsonObject, SeriesState
from mirror.errors import ConfigError, MirrorError
from mirror.run import statuspage

if TYPE_CHECKING:
    from mirror.catalog import Catalog
    from mirror.sync.outcome import Outcome

REFRESH_SECONDS = 5.0

disable_created_metrics()  # *_created gauges only add noise to every counter


class _StateCounts(Protocol):
    async def counts_by_state(self) -> dict[tuple[str, SeriesState], int]: ...


class _Busy(Protocol):
    """A worker pool, as metrics see it: the series it is downloading."""

    @property
    def in_flight(self) -> Sized: ...


class Served(Protocol):
    """What ``/healthz``, ``/metrics`` and the status page ask (the real one: the Daemon)."""

    @property
    def catalog(self) -> Catalog: ...
    @property
    def pool(self) -> _Busy | None: ...
    @property
    def metrics(self) -> Metrics: ...
    async def health(self) -> tuple[bool, JsonObject]: ...


class Metrics:
    """One registry per process; gauges refreshed from the catalog, counters from events."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.series = Gauge("tcia_mirror_series", "Series by state", ["collection", "state"],
                            registry=r)
        self.queue_depth = Gauge("tcia_mirror_queue_depth", "Series queued or fetching",
                                 registry=r)
        self.active = Gauge("tcia_mirror_active_downloads", "Series being fetched here",
                            registry=r)
        self.instances = Counter("tcia_mirror_instances_committed", "Instances committed",
                                 registry=r)
        self.bytes = Counter("tcia_mirror_bytes_committed", "Bytes committed", registry=r)
        self.outcomes = Counter("tcia_mirror_series_outcomes", "Series outcomes",
                                ["status", "mode"], registry=r)
        self.retries = Counter("tcia_mirror_retries", "Series retried later", registry=r)
        self.requests = Counter("tcia_mirror_requests", "HTTP requests to the source",
                                ["endpoint", "status"], registry=r)
        self.last_poll = Gauge("tcia_mirror_last_successful_poll_timestamp_seconds",
                               "Unix time of the last successful poll", ["collection"],
                               registry=r)
        self.poll_failures = Counter("tcia_mirror_poll_failures", "Failed polls",
                                     ["collection"], registry=r)

    def observe_outcome(self, outcome: Outcome) -> None:
        self.outcomes.labels(outcome.status, outcome.mode or "-").inc()
        if outcome.status == "done":
            self.instances.inc(outcome.instances)
            self.bytes.inc(outcome.bytes)
        elif outcome.status == "retry":
            self.retries.inc()

    def observe_request(self, endpoint: str, status: int | str) -> None:
        self.requests.labels(endpoint, str(status)).inc()

    def poll_succeeded(self, collection: str) -> None:
        self.last_poll.labels(collection).set(time.time())

    def poll_failed(self, collection: str) -> None:
        self.poll_failures.labels(collection).inc()

    async def refresh(self, catalog: _StateCounts, pool: _Busy | None) -> None:
        counts = await catalog.counts_by_state()
        self.series.clear()
        depth = 0
        for (collection, state), n in counts.items():
            self.series.labels(collection, str(state)).set(n)
            if state in (SeriesState.QUEUED, SeriesState.FETCHING):
                depth += n
        self.queue_depth.set(depth)
        self.active.set(len(pool.in_flight) if pool is not None else 0)

    async def refresh_loop(self, catalog: _StateCounts, pool: _Busy | None,
                           stopping: anyio.Event) -> None:
        while not stopping.is_set():
            # /healthz reports an unreachable catalog; metrics keep their old values
            with contextlib.suppress(MirrorError):
                await self.refresh(catalog, pool)
            with anyio.move_on_after(REFRESH_SECONDS):
                await stopping.wait()

    def render(self) -> bytes:
        return generate_latest(self.registry)


def split_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)


async def serve_http(listen: str, daemon: Served, stopping: anyio.Event) -> None:
    """Serve /healthz and /metrics until *stopping* is set."""

    async def healthz(_: web.Request) -> web.Response:
        ok, body = await daemon.health()
        return web.Response(status=200 if ok else 503, text=json.dumps(body),
                            content_type="application/json")

    async def metrics(_: web.Request) -> web.Response:
        await daemon.metrics.refresh(daemon.catalog, daemon.pool)
        return web.Response(body=daemon.metrics.render(),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    statuspage.add_routes(app, daemon.catalog)  # / and /status.json
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    host, port = split_listen(listen)
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        raise ConfigError(f"daemon.listen: cannot listen on {listen}: {exc.strerror}") from exc
    try:
        await stopping.wait()
    finally:
        with anyio.CancelScope(shield=True):
            await runner.cleanup()
