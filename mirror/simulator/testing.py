"""Run the simulator in a background thread for tests: :func:`start_simulator`.

A second NBIA host (NLST's case) is a second call, e.g. with
``second_host_spec(DatasetSpec())``: its own port, dataset, tokens and statistics.

The server gets its own event loop in its own thread, so it works from sync tests, async
tests, and while a test drives the CLI in a subprocess. Every handle method is thread-safe.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

from mirror.simulator import md5tree
from mirror.simulator.model import DatasetSpec, second_host_spec
from mirror.simulator.releases import ReleaseSummary
from mirror.simulator.server import DEFAULT_SPEC, Simulator, serve
from mirror.simulator.state import SERVED, TOKEN_PATH, InstanceTruth, SeriesTruth

__all__ = ["DatasetSpec", "InstanceTruth", "ReleaseSummary", "SeriesTruth", "SimulatorHandle",
           "second_host_spec", "start_simulator"]


class SimulatorHandle:
    """A running simulator: URLs, ground truth, releases, faults, statistics."""

    def __init__(self, sim: Simulator, port: int) -> None:
        self.sim = sim
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.token_url = self.url + TOKEN_PATH

    def base_url(self, api: str) -> str:
        return self.url + SERVED[api]

    def collections(self) -> list[str]:
        return self.sim.collections()

    def shared_lists(self) -> dict[str, tuple[str, ...]]:
        return dict(self.sim.catalog.shared_lists)

    def ground_truth(self, collection: str | None = None) -> dict[str, SeriesTruth]:
        return self.sim.ground_truth(collection)

    def publish_release(self, on: date, *, new_patients: int = 0, new_studies: int = 0,
                        new_series: int = 0, revised: int = 0, withdrawn: int = 0,
                        collection: str | None = None, silent_revised: int = 0,
                        silent_series: tuple[str, ...] = ()) -> ReleaseSummary:
        """A release on day *on*. *silent_revised* series (random) and *silent_series*
        (named) get new bytes for one image and keep ImageCount, FileSize, SOP UIDs and
        dates; the collection-level MD5 stays stale until :meth:`refresh_md5_cache`."""
        return self.sim.publish_release(
            on, new_patients=new_patients, new_studies=new_studies, new_series=new_series,
            revised=revised, withdrawn=withdrawn, collection=collection,
            silent_revised=silent_revised, silent_series=tuple(silent_series))

    def refresh_md5_cache(self) -> dict[str, str]:
        """The server's daily collection-hash job, now."""
        return self.sim.refresh_md5_cache()

    def advance_clock(self, hours: float) -> bool:
        """Simulated hours pass; True when the daily hash job ran."""
        return self.sim.advance_clock(hours)

    def set_stored_md5(self, *, short: int = 0, blank: int = 0, null: int = 0,
                       collection: str | None = None,
                       sop_uids: dict[str, str] | None = None) -> dict[str, str | None]:
        """Per-image MD5s the server stores unlike the digest ("short": without leading
        zeros, "blank": " ", "null": NULL); returns {SOP UID: stored value}."""
        return self.sim.set_stored_md5(short=short, blank=blank, null=null,
                                       collection=collection, sop_uids=sop_uids)

    def md5_hierarchy_now(self, collection: str) -> str:
        """The collection hash the daily job would store now (the served one may be stale)."""
        return md5tree.collection_hash(self.sim.catalog, collection)

    def add_fault(self, endpoint: str, kind: str, *, dialect: str | None = None,
                  count: int | None = None, rate: float | None = None, **params: Any) -> str:
        return self.sim.add_fault(endpoint, kind, dialect=dialect, count=count, rate=rate,
                                  **params)

    def clear_faults(self) -> None:
        self.sim.faults.clear()

    def faults(self) -> list[dict[str, Any]]:
        """The faults still armed (a counted fault is gone once it has fired often enough)."""
        return self.sim.faults.list()

    def stats(self) -> dict[str, Any]:
        return self.sim.stats.snapshot()

    def reset_stats(self) -> None:
        self.sim.stats.reset()

    def expire_tokens(self) -> None:
        self.sim.tokens.expire_all()


@contextmanager
def start_simulator(data_dir: Path, spec: DatasetSpec = DEFAULT_SPEC, *,
                    api_key: str | None = None, auth: bool = False,
                    users: dict[str, str] | None = None, token_ttl: float = 3600,
                    fault_seed: int = 0) -> Iterator[SimulatorHandle]:
    """Serve on 127.0.0.1 (a free port) until the ``with`` block ends."""
    sim = Simulator(Path(data_dir), spec, api_key=api_key, auth=auth, users=users,
                    token_ttl=token_ttl, fault_seed=fault_seed)
    loop = asyncio.new_event_loop()
    started: dict[str, Any] = {}
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            started["runner"], started["port"] = loop.run_until_complete(
                serve(sim, "127.0.0.1", 0))
        except BaseException as exc:  # reported to the starting thread below
            started["error"] = exc
            ready.set()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:  # closed in its own thread: the caller may be inside another running loop
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    thread = threading.Thread(target=run, name="tcia-simulator", daemon=True)
    thread.start()
    ready.wait()
    if "error" in started:
        thread.join()
        loop.close()
        raise started["error"]
    try:
        yield SimulatorHandle(sim, started["port"])
    finally:
        _stop(loop, thread, started["runner"])


def _stop(loop: asyncio.AbstractEventLoop, thread: threading.Thread, runner: Any) -> None:
    async def cleanup() -> None:
        await runner.cleanup()

    try:
        asyncio.run_coroutine_threadsafe(cleanup(), loop).result(timeout=30)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
