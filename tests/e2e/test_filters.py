"""Subsets through the CLI: [sync] modalities / body_parts / patients and [sync.filters."NAME"]."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from mirror.domain import SeriesState
from mirror.simulator.testing import DatasetSpec, SimulatorHandle, start_simulator
from tests.e2e.harness import Mirror, archive_files, catalog_series, write_mirror

pytestmark = pytest.mark.slow
LUNG, BRAIN = "SIM-LUNG", "SIM-BRAIN-MR"  # CT and MR collections of seed 1


@pytest.fixture
def two_modalities(sim_data_dir: Path) -> Iterator[SimulatorHandle]:
    with start_simulator(sim_data_dir, DatasetSpec(collections=2, patients=3)) as handle:
        assert handle.collections() == [LUNG, BRAIN]
        yield handle


def modality_of(sim: SimulatorHandle) -> dict[str, str]:
    return {uid: s.modality for uid, s in sim.sim.catalog.series.items()}


def fetched_modalities(sim: SimulatorHandle) -> Counter[str]:
    """Image requests (ZIPs and single instances) per modality, from the request log."""
    modality = modality_of(sim)
    out: Counter[str] = Counter()
    for uid, n in sim.stats()["series"].items():
        out[modality[uid]] += n
    return out


def mirror_with(tmp: Path, sim: SimulatorHandle, filters: str) -> Mirror:
    return write_mirror(tmp, base_url=sim.base_url("nbia-v4"), api="nbia-v4",
                        collections=[LUNG, BRAIN],
                        catalog_url=f"sqlite+aiosqlite:///{tmp / 'catalog.db'}",
                        extra=filters)


def set_filters(mirror: Mirror, filters: str) -> None:
    text = mirror.config.read_text()
    head = text.split("# filters\n")[0]
    mirror.config.write_text(head + "# filters\n" + filters)


def test_ct_only_fetches_no_other_modality_and_widening_is_planned(
        tmp_path: Path, two_modalities: SimulatorHandle) -> None:
    sim = two_modalities
    mirror = mirror_with(tmp_path, sim, '# filters\nmodalities = ["ct"]\n')
    summary = mirror.sync()
    assert summary["outcome"] == "ok"
    fetched = fetched_modalities(sim)
    assert fetched["CT"] > 0 and fetched["MR"] == 0, fetched
    lung, brain = sim.ground_truth(LUNG), sim.ground_truth(BRAIN)
    assert summary["plan"][BRAIN]["add"] == 0
    assert summary["plan"][BRAIN]["out_of_scope"] == len(brain)
    catalog = catalog_series(mirror.catalog_url)
    assert set(catalog) == set(lung)  # MR series were never even queued
    assert all(row.state is SeriesState.DONE for row in catalog.values())

    # widen for one collection (MR with a BodyPartExamined of "brain"): the dry run shows
    # the series to add and changes nothing
    set_filters(mirror, '[sync.filters."sim-brain-mr"]\nmodalities = ["MR"]\n'
                        'body_parts = ["brain"]\n[sync.filters."SIM-LUNG"]\nmodalities = ["CT"]\n')
    wanted = {uid for uid, s in sim.sim.catalog.series.items()
              if s.collection == BRAIN and s.body_part == "BRAIN"}
    assert 0 < len(wanted) < len(brain)  # the dataset has MR series without a body part
    sim.reset_stats()
    dry = json.loads(mirror.run("sync", "--dry-run", "--json", check=True).stdout)
    assert dry["plan"][BRAIN]["add"] == len(wanted)
    assert dry["plan"][BRAIN]["out_of_scope"] == len(brain) - len(wanted)
    assert dry["plan"][LUNG]["add"] == 0
    text = mirror.run("sync", "--dry-run", check=True).stdout
    assert f"{BRAIN}: add {len(wanted)}," in text
    assert sum(sim.stats()["series"].values()) == 0
    assert set(catalog_series(mirror.catalog_url)) == set(lung)

    summary = mirror.sync()
    assert summary["done"] == len(wanted)
    assert set(sim.stats()["series"]) == wanted
    assert {r.series_uid for r in catalog_series(mirror.catalog_url).values()
            if r.state is SeriesState.DONE} == set(lung) | wanted


def test_narrowing_keeps_what_is_on_disk_and_retires_nothing(
        tmp_path: Path, two_modalities: SimulatorHandle) -> None:
    sim = two_modalities
    mirror = mirror_with(tmp_path, sim, "# filters\n")
    assert mirror.sync()["outcome"] == "ok"
    files_before = archive_files(mirror.root)
    keep_patient = sorted({s.patient_id for s in sim.ground_truth(LUNG).values()})[0]

    set_filters(mirror, f'[sync.filters."{LUNG}"]\npatients = ["{keep_patient.lower()}"]\n'
                        f'[sync.filters."{BRAIN}"]\nbody_parts = ["nothing-has-this"]\n')
    dry = mirror.run("sync", "--dry-run", check=True).stdout
    lung_out = sum(1 for s in sim.ground_truth(LUNG).values() if s.patient_id != keep_patient)
    assert f"{lung_out} out of scope (not fetched; {lung_out} already on disk kept)" in dry

    sim.reset_stats()
    summary = mirror.sync()
    assert summary["outcome"] == "ok" and summary["done"] == 0
    assert summary["plan"][LUNG]["retire"] == 0 and summary["plan"][BRAIN]["retire"] == 0
    assert sum(sim.stats()["series"].values()) == 0
    states = Counter(row.state for row in catalog_series(mirror.catalog_url).values())
    assert states == {SeriesState.DONE: len(sim.ground_truth())}
    assert archive_files(mirror.root).keys() >= files_before.keys()
    status = json.loads(mirror.run("status", "--json", check=True).stdout)
    assert all(row["retired"] == 0 for row in status)


def test_narrowing_drops_series_still_waiting(
        tmp_path: Path, two_modalities: SimulatorHandle) -> None:
    """A series failed (nothing on disk) and then filtered out is not tried again."""
    sim = two_modalities
    victim = sorted(sim.ground_truth(BRAIN))[0]
    sim.add_fault("getImage", "status", status=400, series=victim)
    mirror = mirror_with(tmp_path, sim, "# filters\n")
    assert mirror.sync(check=False)["outcome"] == "failed"
    assert catalog_series(mirror.catalog_url)[victim].state is SeriesState.FAILED

    set_filters(mirror, 'modalities = ["CT"]\n')
    sim.reset_stats()
    summary = mirror.sync()
    assert summary["outcome"] == "ok" and summary["failed"] == 0
    assert victim not in catalog_series(mirror.catalog_url)
    assert sum(sim.stats()["series"].values()) == 0


def test_unknown_key_inside_a_filter_is_named(tmp_path: Path,
                                              two_modalities: SimulatorHandle) -> None:
    mirror = mirror_with(tmp_path, two_modalities,
                         f'# filters\n[sync.filters."{LUNG}"]\nmodality = ["CT"]\n')
    proc = mirror.run("sync", "--dry-run")
    assert proc.returncode == 2
    assert f'sync.filters."{LUNG}".modality' in proc.stderr
    assert "Traceback" not in proc.stderr
