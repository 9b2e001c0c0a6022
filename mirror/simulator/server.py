"""The simulator's state and its aiohttp application (dialect routes, token endpoint, admin).

:class:`Simulator` holds everything mutable; its methods are safe from any thread, so the
test handle, the admin routes and the request handlers can share it.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

from aiohttp import web

from mirror.errors import UsageError
from mirror.simulator import admin, md5tree, releases, routes, storedmd5
from mirror.simulator.auth import TokenStore
from mirror.simulator.blobs import BlobStore
from mirror.simulator.catalog import Catalog
from mirror.simulator.datadir import load_base
from mirror.simulator.dicomgen import materialize
from mirror.simulator.faults import Fault, FaultRegistry
from mirror.simulator.model import DatasetSpec
from mirror.simulator.state import (
    SERVED,
    TOKEN_PATHS,
    InstanceTruth,
    SeriesTruth,
    Stats,
)
from mirror.simulator.zips import ZipCache

DEFAULT_SPEC = DatasetSpec()


class Simulator:
    """The running simulator's state; implements :class:`~mirror.simulator.state.SimulatorState`."""

    def __init__(self, data_dir: Path, spec: DatasetSpec = DEFAULT_SPEC, *,
                 api_key: str | None = None, auth: bool = False,
                 users: dict[str, str] | None = None, token_ttl: float = 3600.0,
                 fault_seed: int = 0) -> None:
        self.data_dir = Path(data_dir)
        self.store = BlobStore(self.data_dir)
        self.zips = ZipCache(self.data_dir, self.store)
        cat, self._known = load_base(self.data_dir, spec, self.store)
        # The server's md5 job first runs seconds after start: its snapshot is the first
        # one (Catalog.md5_job_snapshot None), hashed when first asked for.
        self.catalog = cat
        self._hours_since_md5_job = 0.0
        self.api_key = api_key or None
        self.auth = auth
        self.tokens = TokenStore(users, token_ttl)
        self.faults = FaultRegistry(fault_seed)
        self.stats = Stats()
        self._release_lock = threading.Lock()

    def collections(self) -> list[str]:
        return list(self.catalog.collections)

    def ground_truth(self, collection: str | None = None) -> dict[str, SeriesTruth]:
        cat = self.catalog
        return {s.series_uid: SeriesTruth(
            s.collection, s.patient_id, s.study_uid, s.series_uid, s.image_count, s.file_size,
            {i.sop_uid: InstanceTruth(i.size, i.md5) for i in s.instances})
            for s in cat.series.values() if collection in (None, s.collection)}

    def publish_release(self, on: date, **counts: Any) -> releases.ReleaseSummary:
        """Apply a release; new files are written before the new snapshot becomes visible."""
        with self._release_lock:
            cat, summary, touched = releases.apply(self.catalog, on, **counts)
            done = materialize(cat, self.store, touched, self._known)
            series = {uid: done.get(uid, s) for uid, s in cat.series.items()}
            self.catalog = replace(cat, series=series, md5_job_snapshot=self._md5_job_saw())
        return summary

    def _md5_job_saw(self) -> Catalog:
        """The snapshot the daily collection-hash job last ran on (it stays until a refresh)."""
        return self.catalog.md5_job_snapshot or self.catalog

    def refresh_md5_cache(self) -> dict[str, str]:
        """Run the server's daily collection-hash job now; returns the stored hashes."""
        with self._release_lock:
            self.catalog = replace(self.catalog, md5_job_snapshot=None)
            self._hours_since_md5_job = 0.0
            return self.md5_cache()

    def md5_cache(self) -> dict[str, str]:
        """Collection-level getMD5Hierarchy values as the daily job last stored them."""
        return dict(md5tree.stored_hashes(self.catalog))

    def advance_clock(self, hours: float) -> bool:
        """Let simulated time pass: the job runs once 24 hours have gone by since the last
        run. True when it ran."""
        if hours < 0:
            raise UsageError("the clock only moves forward")
        with self._release_lock:
            self._hours_since_md5_job += hours
            due = self._hours_since_md5_job >= 24
        if due:
            self.refresh_md5_cache()
        return due

    def set_stored_md5(self, **choice: Any) -> dict[str, str | None]:
        """Make the server store some per-image MD5s differently (see :mod:`storedmd5`)."""
        with self._release_lock:
            overrides, shown = storedmd5.choose(self.catalog, **choice)
            self.catalog = replace(self.catalog,
                                   stored_md5={**self.catalog.stored_md5, **overrides},
                                   md5_job_snapshot=self._md5_job_saw())
        return shown

    def add_fault(self, endpoint: str, kind: str, **kwargs: Any) -> str:
        return self.faults.add(endpoint, kind, **kwargs)

    def take_faults(self, dialect: str, endpoint: str,
                    series_uid: str | None = None) -> list[Fault]:
        return self.faults.take(dialect, endpoint, series_uid)

    def snapshot(self) -> Catalog:
        return self.catalog


def make_app(sim: Simulator) -> web.Application:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    for dialect, prefix in SERVED.items():
        handler = routes.dialect_handler(sim, dialect)
        app.router.add_route("*", prefix + "/{name}", handler)
    for path in TOKEN_PATHS:
        app.router.add_route("*", path, routes.token_handler(sim))
    admin.add_routes(app, sim)
    return app


async def serve(sim: Simulator, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Start serving; returns the runner (for cleanup) and the bound port."""
    runner = web.AppRunner(make_app(sim), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    server = site._server  # aiohttp has no public accessor for the bound port
    sockets = getattr(server, "sockets", None) or []
    bound = sockets[0].getsockname()[1] if sockets else port
    return runner, bound
