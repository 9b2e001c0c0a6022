"""The rolling hash scrub: every patient once per reconcile_interval, spread over polls.

The catalog is filled through the CLI; then the scheduler polls through the real client
against the simulator at chosen times (no waiting), and the catalog's scrub state and
the simulator's request counts are checked after each poll.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mirror.catalog import Catalog
from mirror.config.settings import load_settings
from mirror.domain import SeriesState
from mirror.simulator.testing import DatasetSpec, SimulatorHandle, start_simulator
from mirror.sync import discovery
from mirror.tcia import TciaClient
from tests.e2e.harness import write_mirror

pytestmark = pytest.mark.slow

T0 = datetime(2030, 1, 1, 12, tzinfo=UTC)
HOUR = timedelta(hours=1)


@pytest.fixture
def five_patients(sim_data_dir: Path) -> Iterator[SimulatorHandle]:
    with start_simulator(sim_data_dir, DatasetSpec(patients=5)) as handle:
        yield handle


def hash_requests(sim: SimulatorHandle) -> int:
    return sum(n for k, n in sim.stats()["requests"].items() if k.endswith(":getMD5Hierarchy"))


async def test_rolling_scrub_covers_every_patient_once_per_interval(
        tmp_path: Path, five_patients: SimulatorHandle) -> None:
    sim = five_patients
    (collection,) = sim.collections()
    url = f"sqlite+aiosqlite:///{tmp_path / 'catalog.db'}"
    mirror = write_mirror(tmp_path, base_url=sim.base_url("nbia-v4"), api="nbia-v4",
                          collections=[collection], catalog_url=url,
                          extra='reconcile_interval = "5h"\nhash_requests_per_second = 0\n')
    assert mirror.run("sync", check=True).returncode == 0
    truth = sim.ground_truth()
    last = max(s.patient_id for s in truth.values())  # the scrub goes in patient ID order
    victim = min(uid for uid, s in truth.items() if s.patient_id == last)
    studies = {s.study_uid for s in truth.values() if s.patient_id == last}
    series = [uid for uid, s in truth.items() if s.patient_id == last]
    sim.publish_release(date.today(), silent_series=(victim,))
    settings = load_settings(mirror.config, env={})
    catalog = await Catalog.open(url)
    seen: list[tuple[int, str | None, int]] = []

    async def poll(at: datetime) -> Any:
        sim.reset_stats()
        found = await discovery.discover(client, catalog, collection, settings=settings,
                                         now=at)
        state = await catalog.hash_state(collection)
        seen.append((hash_requests(sim), state.cursor, state.pass_changed))
        return found, state

    try:
        async with TciaClient(settings.source) as client:
            # the pass starts: its clock runs from here, no hash request yet
            _, state = await poll(T0)
            assert state.pass_started_at == T0 and seen[-1] == (0, None, 0)
            # an hour later: a fifth of the interval, so one of five patients
            await poll(T0 + HOUR)
            assert seen[-1][0] == 1 and seen[-1][1] is not None
            # three hours in: three patients checked in all
            await poll(T0 + 3 * HOUR)
            assert seen[-1][0] == 2
            assert await catalog.hash_patient_count(collection, upto=seen[-1][1]) == 3
            assert state.checked_at is None  # no full pass yet
            # the interval is over: the last two patients, one with a changed series
            found, state = await poll(T0 + 5 * HOUR)
            assert found.hash is not None and found.hash.changed == [victim]
            # 1 per patient, +1 per study and +1 per series of the patient that differs
            assert seen[-1][0] == 2 + len(studies) + len(series)
            assert found.hash.complete
            assert state.checked_at == T0 + 5 * HOUR and state.changed == 1
            assert state.pass_started_at is None and state.cursor is None
            # the next poll starts the next pass, at no cost
            await poll(T0 + 5 * HOUR + timedelta(minutes=1))
            assert seen[-1][0] == 0
            queued = {row.series_uid: row.queue_reason async for row in
                      catalog.iter_series(states=[SeriesState.QUEUED])}
            assert queued == {victim: "hash mismatch"}
    finally:
        await catalog.close()
