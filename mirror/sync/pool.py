"""The worker pool: claim -> fetch -> verify -> commit loops, all in one anyio task group.

Owns claiming (as many series as there are free workers), leases (heartbeat, reaping
expired ones, taking back those of dead processes), when a one-shot run is done, and
the run's tallies (:class:`PoolStats`). Each claimed series goes to the per-series job
(:func:`mirror.sync.job.process_series`) with a :class:`~mirror.sync.job.JobContext`
built once per run, its :class:`~mirror.retry.RetryPolicy` included.

Each series is fetched into ``<root>/.staging/`` and only renamed into place after
every check passed; the catalog commit follows the rename, and a crash between the two
is healed by adoption (the next attempt finds the complete files and fetches nothing).

A one-shot run never waits past its horizon: once nothing is in flight and the next
retry is due later than ``[sync] max_wait``, it stops and reports those series as
deferred (their next attempt time stays in the catalog). A full disk is transient: the
daemon retries it with backoff for as long as it takes; a one-shot run gives up after
``max_attempts`` like for any other transient error.
"""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
from anyio.abc import TaskGroup

from mirror.catalog import LeaseLost
from mirror.catalog.records import ClaimedSeries
from mirror.catalog.store import Scope
from mirror.config.settings import Settings
from mirror.domain import SeriesState
from mirror.errors import MirrorError
from mirror.retry import RetryPolicy
from mirror.sync import job
from mirror.sync.job import JobContext
from mirror.sync.outcome import Outcome, PoolStats
from mirror.sync.ports import (
    EVERYTHING,
    Everything,
    PoolCatalog,
    ProgressDisplay,
    SeriesSource,
)

__all__ = ["Pool", "PoolStats", "new_owner", "owner_is_dead", "scope_of"]

IDLE_RECHECK = 2.0
#: Series being committed (downloaded, not done yet) add up to this many times ``workers``:
#: ``workers`` counts concurrent downloads; commits batch up behind them.
COMMIT_DEPTH = 4


def scope_of(collections: Sequence[str] | Scope | Everything | None,
             ) -> Sequence[str] | Scope | Everything:
    """A pool's scope: a :class:`Scope` (collections + manifests) as it is, a list of
    collection names, or :data:`EVERYTHING`, which None and an empty list also mean."""
    if isinstance(collections, Scope | Everything):
        return collections
    return list(collections) if collections else EVERYTHING


def new_owner() -> str:
    """A lease owner id unique across hosts and restarts: ``<host>:<pid>:<random>``."""
    return f"{_host_id()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@functools.cache
def _host_id() -> str:
    """The host name plus the PID namespace, the scope in which an owner's pid means
    something (containers may share a host name and a catalog, never a namespace)."""
    try:
        return f"{socket.gethostname()}/{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:
        return socket.gethostname()


def owner_is_dead(owner: str) -> bool:
    """True only when *owner* is a process of this host and PID namespace that has exited.

    A one-shot sync killed with SIGKILL leaves its series leased; this lets the next run
    take them back at once instead of waiting out the lease (5 minutes by default).
    Unknown formats, other hosts and live (or merely unreadable) processes give False.
    """
    host, sep, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if not sep or host != _host_id() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid() or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # e.g. EPERM: it exists, as another user
    return _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    """Killed but not yet reaped by its parent: it will never touch its leases again."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


class Pool:
    """``workers`` concurrent series downloads drawing from the catalog queue."""

    def __init__(self, *, client: SeriesSource, catalog: PoolCatalog, settings: Settings,
                 collections: Sequence[str] | Scope | Everything | None,
                 owner: str | None = None,
                 on_outcome: Callable[[Outcome], None] | None = None,
                 progress: ProgressDisplay | None = None,
                 retry_policy: RetryPolicy | None = None) -> None:
        self.client = client
        self.catalog = catalog
        self.settings = settings
        self.scope = scope_of(collections)
        self.owner = owner or new_owner()
        self.on_outcome = on_outcome
        self.progress = progress
        #: None: built from the settings when the run starts (one-shot or daemon rules)
        self.retry_policy = retry_policy
        self.stats = PoolStats()
        self.in_flight: dict[str, ClaimedSeries] = {}
        self._stopping = anyio.Event()
        self._changed = anyio.Event()
        self._job: JobContext | None = None
        #: claimed, leased, not started yet (also in ``in_flight``, for the heartbeat)
        self._ahead: deque[ClaimedSeries] = deque()
        self._downloading: set[str] = set()  #: started, download not over yet

    @property
    def collections(self) -> Sequence[str] | Scope | None:
        """The catalog's filter for this pool's scope (the catalog reads None as no filter)."""
        return None if self.scope is EVERYTHING else self.scope

    def stop(self) -> None:
        """Stop claiming; in-flight series go on until they finish or are cancelled."""
        self._stopping.set()
        self._changed.set()

    def wake(self) -> None:
        """New work may be queued (a poll finished): idle workers claim now."""
        self._changed.set()

    async def run(self, *, until_idle: bool) -> PoolStats:
        """Run the workers; with *until_idle*, return once nothing is left to do now.

        "Now" is the horizon of ``sync.max_wait``: retries due later are left queued and
        listed in ``stats.deferred``.
        """
        policy = self.retry_policy or RetryPolicy.from_settings(self.settings,
                                                                daemon=not until_idle)
        self._job = JobContext.from_settings(
            self.settings, catalog=self.catalog, client=self.client, owner=self.owner,
            policy=policy, progress=self.progress, downloaded=self._downloaded)
        await self.reclaim_dead_leases()
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._heartbeat_loop)
            async with anyio.create_task_group() as work:
                await self._claim_loop(work, until_idle)
            tg.cancel_scope.cancel()
        return self.stats

    async def reclaim_dead_leases(self) -> int:
        """Queue again, due now, the series leased by dead processes of this host."""
        dead = [(row.series_uid, row.lease_owner) async for row in self.catalog.iter_series(
            states=[SeriesState.FETCHING], collections=self.collections)
            if row.lease_owner and owner_is_dead(row.lease_owner)]
        for uid, owner in dead:
            try:  # counts as an attempt, like an expired lease: a series that kills
                # its worker every time must still give up eventually
                await self.catalog.fail(uid, owner, error=f"lease holder {owner} died",
                                        retry_at=datetime.now(UTC))
            except LeaseLost:
                continue  # another process took it back first
        return len(dead)

    async def _claim_loop(self, work: TaskGroup, until_idle: bool) -> None:
        """Start claimed series on free workers; claim (one statement) a batch ahead: a
        claim per finished series cost small series as much as their commit. Series
        claimed ahead are leased and heartbeated like running ones, given back at the end."""
        try:
            await self._claim_and_start(work, until_idle)
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(10):
                await self._release_ahead()

    async def _claim_and_start(self, work: TaskGroup, until_idle: bool) -> None:
        lease, workers = self.settings.sync.lease, self.settings.sync.workers
        while not self._stopping.is_set():
            running = len(self.in_flight) - len(self._ahead)
            free = min(workers - len(self._downloading), COMMIT_DEPTH * workers - running)
            if free > 0:
                if not self._ahead:
                    claimed = await self.catalog.claim(self.owner, free + workers,
                                                       lease_seconds=lease,
                                                       collections=self.collections)
                    for item in claimed:
                        self.in_flight[item.series_uid] = item
                    self._ahead.extend(claimed)
                if self._ahead:
                    for _ in range(min(free, len(self._ahead))):
                        item = self._ahead.popleft()
                        self._downloading.add(item.series_uid)
                        work.start_soon(self._process, item)
                    continue
                if until_idle and not self.in_flight and await self._idle_for_good():
                    return
            await self._wait_for_work(nothing_due=free > 0)

    async def _release_ahead(self) -> None:
        """Give back the series claimed ahead that never started (the attempt not counted)."""
        while self._ahead:
            item = self._ahead.popleft()
            self.in_flight.pop(item.series_uid, None)
            with contextlib.suppress(MirrorError):  # lost meanwhile: not ours to give
                await self.catalog.release(item.series_uid, self.owner)

    async def _idle_for_good(self) -> bool:
        """Nothing pending, or everything queued is due beyond the horizon (then deferred)."""
        if await self.catalog.pending(self.collections) == 0:
            return True
        due = await self.catalog.next_due(self.collections)
        horizon = datetime.now(UTC) + timedelta(seconds=self.settings.sync.max_wait)
        if due is None or due <= horizon:
            return False  # a retry comes due soon, or another process holds the rest
        self.stats.deferred = [
            {"series_uid": row.series_uid, "collection": row.collection,
             "next_attempt": row.next_attempt_at.isoformat() if row.next_attempt_at else None,
             "error": row.last_error or ""}
            async for row in self.catalog.iter_series(states=[SeriesState.QUEUED],
                                                      collections=self.collections)]
        return True

    async def _wait_for_work(self, *, nothing_due: bool = True) -> None:
        """Sleep until a download finishes, new work is announced, or a retry is due.

        With every worker busy (*nothing_due* False) only a finished download matters:
        no catalog read per wake-up (small series finish by the hundred per second).
        """
        wait = IDLE_RECHECK
        if nothing_due and (due := await self.catalog.next_due(self.collections)) is not None:
            wait = min(wait, max((due - datetime.now(UTC)).total_seconds(), 0.05))
        changed = self._changed
        with anyio.move_on_after(wait):
            await changed.wait()
        if changed.is_set() and not self._stopping.is_set():
            self._changed = anyio.Event()

    async def _process(self, item: ClaimedSeries) -> None:
        if self._job is None:
            raise RuntimeError("Pool._process runs only inside Pool.run")
        try:
            outcome = await job.process_series(self._job, item)
        finally:
            self.in_flight.pop(item.series_uid, None)
            self._downloading.discard(item.series_uid)
        self.stats.add(outcome)
        if self.on_outcome:
            self.on_outcome(outcome)
        self._changed.set()

    def _downloaded(self, series_uid: str) -> None:
        """A download is over (its series is being committed): a worker is free."""
        self._downloading.discard(series_uid)
        self._changed.set()

    async def _heartbeat_loop(self) -> None:
        """Renew our leases, and put back in the queue those of workers that died."""
        lease = self.settings.sync.lease
        while True:
            await anyio.sleep(max(lease / 3, 0.5))
            if self.in_flight:
                await self.catalog.heartbeat(self.owner, list(self.in_flight),
                                             lease_seconds=lease)
            if await self.catalog.reap_expired():
                self._changed.set()
