"""Crash safety through the CLI: SIGKILL at ten seeded moments, then run to completion.

Moments are chosen by progress (requests made and bytes served at the simulator, files
renamed into the archive), never by time, so a slow machine kills at the same points.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mirror.catalog import NotInitialised
from mirror.domain import SeriesState
from mirror.simulator.testing import DatasetSpec, SimulatorHandle, start_simulator
from tests.e2e.harness import (
    Mirror,
    archive_files,
    assert_archive_matches,
    bad_files,
    catalog_series,
    expected_files,
    image_downloads,
    write_mirror,
)

pytestmark = pytest.mark.slow

#: 16 series of 6 instances of ~400 kB: a series ZIP is ~1.3 MB on the wire, so kills
#: land inside series downloads as well as between them.
SPEC = DatasetSpec(seed=11, patients=4, studies=1, series=4, instances=6,
                   instance_size=400_000)
KILLS = 10
SEED = 20261124
DEADLINE = 60.0


@pytest.fixture
def sim(sim_data_dir: Path) -> Iterator[SimulatorHandle]:
    with start_simulator(sim_data_dir, SPEC) as handle:
        yield handle


@pytest.fixture
def mirror(tmp_path: Path, sim: SimulatorHandle, catalog_url: str) -> Mirror:
    return write_mirror(tmp_path, base_url=sim.base_url("nbia-v4"), api="nbia-v4",
                        collections=sim.collections(), catalog_url=catalog_url, workers=2)


def plan_moments(rng: random.Random, wire_total: int) -> list[tuple[str, int]]:
    """KILLS moments as (counter, how far it must advance in that run).

    Counters: ``requests`` (discovery or the first request), ``bytes`` served (inside
    downloads) and ``files`` at final paths (just after a rename, maybe before the
    catalog commit). The byte moments add up to 30% of the download and the file
    moments to at most half the series, so the sync cannot finish before the last kill.
    """
    kinds = rng.choices(["requests", "bytes", "files"], weights=[2, 4, 4], k=KILLS)
    weights = [rng.uniform(0.2, 1.0) for _ in range(KILLS)]
    scale = 0.3 * wire_total / max(sum(w for w, k in zip(weights, kinds, strict=True)
                                       if k == "bytes"), 1e-9)
    files_left = SPEC.patients * SPEC.series // 2
    moments = []
    for kind, weight in zip(kinds, weights, strict=True):
        if kind == "requests":
            moments.append((kind, rng.randint(1, 3)))
        elif kind == "bytes":
            moments.append((kind, int(weight * scale)))
        else:
            series = min(rng.randint(1, 2), files_left)
            files_left -= series
            moments.append((kind, series * SPEC.instances) if series else ("requests", 1))
    return moments


def keep_mid_sync(mirror: Mirror, sim: SimulatorHandle, moment: tuple[str, int],
                  total_files: int) -> tuple[str, int]:
    """The planned moment, or the next request once half the files are in place.

    Commits rename a batch of finished series at once, so a file moment can land several
    series past its plan; the plan's "at most half the series" is held against the files
    actually in place, so a later moment still comes before the sync can finish.
    """
    counter, _ = moment
    if counter != "requests" and progress(mirror, sim, "files") >= total_files // 2:
        return "requests", 1
    return moment


def progress(mirror: Mirror, sim: SimulatorHandle, counter: str) -> int:
    if counter == "files":
        return sum(len(files) for top, _, files in os.walk(mirror.root)
                   if ".staging" not in Path(top).relative_to(mirror.root).parts[:1])
    return sim.stats()["requests_total" if counter == "requests" else "bytes"]


def run_until(mirror: Mirror, sim: SimulatorHandle, counter: str, advance: int) -> bool:
    """Start a sync and SIGKILL it once *counter* advanced by *advance*; False if it ended."""
    target = progress(mirror, sim, counter) + advance
    proc = mirror.popen("sync", "--json")
    deadline = time.monotonic() + DEADLINE
    try:
        while progress(mirror, sim, counter) < target:
            if time.monotonic() > deadline:
                raise AssertionError(f"no progress to {counter}={target} in {DEADLINE} s")
            try:
                proc.wait(timeout=0.01)
                return False  # finished before the moment came
            except subprocess.TimeoutExpired:
                continue
        proc.send_signal(signal.SIGKILL)
        return True
    finally:
        proc.wait()
        proc.communicate()


def done_series(mirror: Mirror) -> set[str]:
    try:
        rows = catalog_series(mirror.catalog_url)
    except (NotInitialised, sqlite3.Error):
        return set()  # killed before the catalog was created
    return {uid for uid, row in rows.items() if row.state is SeriesState.DONE}


def staging_entries(mirror: Mirror) -> list[Path]:
    staging = mirror.root / ".staging"
    return list(staging.iterdir()) if staging.is_dir() else []


def complete_on_disk(mirror: Mirror, truth: dict[str, Any]) -> set[str]:
    """Series whose every file is at its final path with the right content."""
    files = archive_files(mirror.root)
    want = expected_files(truth)
    by_series: dict[str, bool] = {}
    for rel, value in want.items():
        uid = rel.split("/")[3]
        by_series[uid] = by_series.get(uid, True) and files.get(rel) == value
    return {uid for uid, ok in by_series.items() if ok}


def test_sigkill_at_ten_moments_then_converges(mirror: Mirror, sim: SimulatorHandle) -> None:
    truth = sim.ground_truth()
    wire_total = sum(s.file_size for s in truth.values()) // 2  # pixel data deflate ~2:1
    # image requests per series when it was first seen safe: committed in the catalog,
    # or complete at its final path (killed between the rename and the commit)
    served_when_safe: dict[str, int] = {}
    committed: set[str] = set()
    stale_staging = 0
    total_files = len(expected_files(truth))
    for kill, moment in enumerate(plan_moments(random.Random(SEED), wire_total)):
        counter, advance = keep_mid_sync(mirror, sim, moment, total_files)
        assert run_until(mirror, sim, counter, advance), f"sync ended before kill {kill + 1}"
        assert bad_files(mirror.root, truth) == [], f"after kill {kill + 1}"
        stale_staging += bool(staging_entries(mirror))
        per_series = sim.stats()["series"]
        committed |= done_series(mirror)
        for uid in (committed | complete_on_disk(mirror, truth)) - set(served_when_safe):
            served_when_safe[uid] = per_series.get(uid, 0)
    assert served_when_safe and len(committed) < len(truth), "kills should land mid-sync"
    assert stale_staging, "some kill should have left staging behind"

    summary = mirror.sync()

    assert summary["outcome"] == "ok" and summary["failed_series"] == []
    assert_archive_matches(mirror.root, truth)
    assert staging_entries(mirror) == []
    per_series = sim.stats()["series"]
    again = {uid: (n, per_series.get(uid, 0)) for uid, n in served_when_safe.items()
             if per_series.get(uid, 0) != n}
    assert again == {}, f"series downloaded again after they were safe: {again}"
    assert done_series(mirror) == set(truth)


def test_complete_but_uncommitted_series_is_adopted_without_download(
        mirror: Mirror, sim: SimulatorHandle) -> None:
    """The state a kill between the final rename and the catalog commit leaves behind."""
    truth = sim.ground_truth()
    mirror.sync()
    victims = sorted(truth)[:3]
    uncommit(mirror.catalog_url, victims)
    stale = mirror.root / ".staging" / f"{victims[0]}.deadbeef0000"
    stale.mkdir(parents=True)
    (stale / "series.zip").write_bytes(b"PK\x03\x04 half a download")
    sim.reset_stats()

    summary = mirror.sync()

    assert summary["outcome"] == "ok" and summary["done"] == len(victims)
    stats = sim.stats()
    assert image_downloads(stats, "getImage", "getImageWithMD5Hash", "getSingleImage") == 0
    assert sum(n for k, n in stats["requests"].items()
               if k.endswith(":getSOPInstanceUIDs")) == len(victims)
    assert not stale.exists() and staging_entries(mirror) == []
    assert_archive_matches(mirror.root, truth)
    rows = catalog_series(mirror.catalog_url)
    assert all(rows[uid].state is SeriesState.DONE and rows[uid].local_instance_count
               == truth[uid].image_count for uid in victims)
    assert mirror.run("verify").returncode == 0


def uncommit(catalog_url: str, series_uids: list[str]) -> None:
    """Leave *series_uids* leased by a process that no longer exists, instance rows gone."""
    import asyncio
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import delete, select, update

    from mirror.catalog import Catalog, models
    from mirror.sync.pool import new_owner

    dead = subprocess.Popen(["true"])
    dead.wait()
    owner = new_owner().split(":")[0] + f":{dead.pid}:gone"
    S, INST = models.series, models.instances

    async def run() -> None:
        catalog = await Catalog.open(catalog_url, upgrade=False)
        try:
            async with catalog._engine.begin() as conn:
                ids = select(S.c.id).where(S.c.series_uid.in_(series_uids))
                await conn.execute(delete(INST).where(INST.c.series_ref.in_(ids)))
                await conn.execute(update(S).where(S.c.series_uid.in_(series_uids)).values(
                    state=SeriesState.FETCHING, lease_owner=owner, attempts=1,
                    lease_expires_at=datetime.now(UTC) + timedelta(hours=1), local_path=None,
                    local_bytes=None, local_instance_count=None, verified_at=None))
        finally:
            await catalog.close()

    asyncio.run(run())

