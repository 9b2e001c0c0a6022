"""Several OS processes share one catalog queue: each series is claimed exactly once,
and the series of a claimer killed with SIGKILL come back once its lease expires."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mirror.catalog import Catalog
from mirror.domain import SeriesState
from tests.catalog.factory import remote

ROOT = Path(__file__).resolve().parents[2]
CLAIMERS = 4
SERIES = 10_000


async def _spawn(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.catalog.claimer", *args, cwd=ROOT,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)


async def _lines_until_ready(process: asyncio.subprocess.Process) -> list[str]:
    assert process.stdout is not None
    lines: list[str] = []
    async with asyncio.timeout(60):
        while (line := (await process.stdout.readline()).decode().strip()) != "READY":
            assert line, f"claimer exited early with {await process.wait()}"
            lines.append(line)
    return lines


@pytest.fixture
async def queued(catalog: Catalog) -> AsyncIterator[Catalog]:
    await catalog.upsert_series([remote(i) for i in range(SERIES)])
    yield catalog


async def test_every_series_is_claimed_exactly_once(queued: Catalog, catalog_url: str) -> None:
    procs = [await _spawn("drain", catalog_url, f"claimer-{n}") for n in range(CLAIMERS)]
    for proc in procs:
        await _lines_until_ready(proc)
    outputs = await asyncio.wait_for(
        asyncio.gather(*(p.communicate(b"go\n") for p in procs)), timeout=90)
    assert [p.returncode for p in procs] == [0] * CLAIMERS
    per_owner = {f"claimer-{n}": out.decode().split() for n, (out, _) in enumerate(outputs)}
    counts = Counter(uid for uids in per_owner.values() for uid in uids)
    assert len(counts) == SERIES and set(counts.values()) == {1}
    assert sum(1 for uids in per_owner.values() if uids) >= 2  # they did contend
    assert await queued.pending() == SERIES and await queued.next_due() is None
    # the catalog agrees with what each process reported
    owners = {row.series_uid: row.lease_owner async for row in queued.iter_series(
        states=[SeriesState.FETCHING], batch=5000)}
    assert owners == {uid: owner for owner, uids in per_owner.items() for uid in uids}


async def test_a_killed_claimers_series_come_back(queued: Catalog, catalog_url: str) -> None:
    lease = "2"
    victim = await _spawn("hold", catalog_url, "victim", "--batch", "100", "--lease", lease)
    victims = await _lines_until_ready(victim)
    survivor = await _spawn("hold", catalog_url, "survivor", "--batch", "100",
                            "--lease", lease, "--heartbeat", "0.3")
    survivors = await _lines_until_ready(survivor)
    try:
        assert len(victims) == len(survivors) == 100
        os.kill(victim.pid, signal.SIGKILL)
        assert await victim.wait() == -signal.SIGKILL
        killed_at = time.monotonic()
        await _until_reaped(queued, victims)
        assert time.monotonic() - killed_at > 0.5  # came back through expiry, not at once
        snap = await queued.series_snapshot("COLL-A", victims + survivors)
        assert {snap[u].state for u in victims} == {SeriesState.QUEUED}
        # the survivor outlived its 2 s lease only thanks to its heartbeats
        assert {snap[u].state for u in survivors} == {SeriesState.FETCHING}
        assert await queued.reap_expired() == 0
        again = await queued.claim("rescuer", SERIES, lease_seconds=60)
        assert {c.series_uid for c in again} == set(victims) | {
            remote(i).series_uid for i in range(SERIES)} - set(victims) - set(survivors)
        assert {c.attempts for c in again if c.series_uid in set(victims)} == {2}
    finally:
        survivor.kill()
        await survivor.wait()


async def _until_reaped(catalog: Catalog, uids: list[str]) -> None:
    """Reap and look again until every uid is queued, for at most 30 seconds."""
    async with asyncio.timeout(30):
        while True:
            await catalog.reap_expired()
            snap = await catalog.series_snapshot("COLL-A", uids)
            if all(snap[u].state is SeriesState.QUEUED for u in uids):
                return
            await asyncio.sleep(0.1)  # poll interval of the bounded wait
