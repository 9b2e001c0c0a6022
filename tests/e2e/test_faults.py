"""Sync under injected faults via the CLI: transient ones converge, permanent ones fail cleanly.

Each test gives every faulted series its own fault (``series=UID``), so one sync run
exercises many kinds at once; a scan of the archive runs the whole time and must never
see a file that is not exactly the ground truth at its own path.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from mirror.domain import SeriesState
from mirror.simulator.testing import DatasetSpec, SimulatorHandle, start_simulator
from tests.e2e.harness import (
    Mirror,
    assert_archive_matches,
    catalog_series,
    image_downloads,
    run_watched,
    write_mirror,
)

pytestmark = pytest.mark.slow

#: 16 small series (4 patients x 4 series x 4 instances): room for one fault per series.
SPEC = DatasetSpec(seed=5, patients=4, studies=1, series=4, instances=4, instance_size=4096)
ZIP_ENDPOINTS = ("getImage", "getImageWithMD5Hash")
#: Files a hostile entry would create if extraction followed its name.
ESCAPES = (Path("/tmp/tcia-sim-escape.dcm"), Path("/tmp/tcia-sim-absolute.dcm"))


@pytest.fixture
def sim(sim_data_dir: Path) -> Iterator[SimulatorHandle]:
    with start_simulator(sim_data_dir, SPEC) as handle:
        yield handle


@pytest.fixture
def mirror(tmp_path: Path, sim: SimulatorHandle, catalog_url: str) -> Mirror:
    return write_mirror(tmp_path, base_url=sim.base_url("nbia-v4"), api="nbia-v4",
                        collections=sim.collections(), catalog_url=catalog_url, workers=6)


def series_uids(sim: SimulatorHandle) -> list[str]:
    return sorted(sim.ground_truth())


def fault_zip(sim: SimulatorHandle, uid: str, kind: str, **params: Any) -> None:
    """The same fault on both ZIP endpoints (which one a sync uses depends on verify)."""
    for endpoint in ZIP_ENDPOINTS:
        sim.add_fault(endpoint, kind, series=uid, **params)


def mtimes(paths: tuple[Path, ...]) -> dict[Path, float | None]:
    return {p: p.stat().st_mtime if p.exists() else None for p in paths}


#: (kind, params) of transient faults: each must be absorbed by the two retry tiers.
TRANSIENT = [
    ("status", {"status": 500, "count": 4}),  # beyond the 3 in-place tries: a series retry
    ("retry_after", {"seconds": 1, "status": 429, "count": 2}),
    ("retry_after", {"seconds": 1, "status": 503, "count": 1}),
    ("reset", {"after_bytes": 3000, "count": 2}),
    ("truncate", {"fraction": 0.5, "count": 1}),  # clean early close: a valid, short ZIP
    ("truncate", {"after_bytes": 5000, "raw": 1, "count": 1}),  # cut mid-entry
    ("corrupt", {"bytes": 4, "count": 1}),
    ("wrong_series", {"count": 1}),
    ("hostile", {"entry": "bomb", "size": 4 << 20, "count": 1}),  # small: not DICOM, unlisted
    ("status", {"status": 502, "count": 5}),  # a longer burst: two series attempts
]
#: Faults that cost a series attempt (the others are absorbed by in-place retries).
SERIES_RETRIES = 7


def test_transient_faults_converge(mirror: Mirror, sim: SimulatorHandle) -> None:
    truth = sim.ground_truth()
    uids = series_uids(sim)
    for uid, (kind, params) in zip(uids, TRANSIENT, strict=False):
        fault_zip(sim, uid, kind, **params)
    before = mtimes(ESCAPES)

    code, summary, err, problems = run_watched(mirror, truth=truth)

    assert code == 0, err[-3000:]
    assert summary["outcome"] == "ok" and summary["failed_series"] == []
    assert summary["retried"] == SERIES_RETRIES, summary
    assert problems == []
    assert_archive_matches(mirror.root, truth)
    assert mtimes(ESCAPES) == before
    rows = catalog_series(mirror.catalog_url)
    assert {r.state for r in rows.values()} == {SeriesState.DONE}
    assert all(r.last_error is None for r in rows.values())
    statuses = sim.stats()["statuses"]
    assert statuses.get("429") and statuses.get("503") and statuses.get("500")
    # every fault fired on its own series' requests: counted faults are used up
    # (v4 verifies through getImage?IncludeMD5=Yes)
    assert [f for f in sim.faults() if f["endpoint"] == "getImage"] == []


#: (kind, params, what the recorded error must say) of faults that never go away.
PERMANENT = [
    ("status", {"status": 500}, "HTTP 500"),
    ("retry_after", {"seconds": 1, "status": 503}, "HTTP 503"),
    ("reset", {"after_bytes": 3000}, "connection lost"),
    ("truncate", {"fraction": 0.5}, "md5hashes.csv"),  # early close drops it
    ("truncate", {"after_bytes": 5000, "raw": 1}, "TruncatedArchive"),
    ("corrupt", {"bytes": 4}, "VerificationError"),
    ("wrong_series", {}, "SeriesInstanceUID"),
    ("hostile", {"entry": "dotdot"}, "parent directory"),
    ("hostile", {"entry": "absolute"}, "absolute path"),
    ("hostile", {"entry": "duplicate"}, "duplicate name"),
    ("hostile", {"entry": "bomb", "size": 4 << 20}, "bomb.dcm"),
    ("hostile", {"entry": "bomb", "size": 80 << 20}, "HostileArchive"),  # beyond the caps
    ("status", {"status": 400, "body": "Image with given SeriesInstanceUID is not in "
                                       "public domain."}, "not in public domain"),
]


def test_permanent_faults_fail_cleanly_then_recover(mirror: Mirror,
                                                    sim: SimulatorHandle) -> None:
    truth = sim.ground_truth()
    uids = series_uids(sim)
    expected_error = {}
    for uid, (kind, params, says) in zip(uids, PERMANENT, strict=False):
        fault_zip(sim, uid, kind, **params)
        expected_error[uid] = says
    before = mtimes(ESCAPES)

    code, summary, err, problems = run_watched(mirror, truth=truth)

    assert code == 1, err[-3000:]
    assert summary["outcome"] == "failed"
    assert sorted(summary["failed_series"]) == sorted(expected_error)
    assert problems == []
    assert mtimes(ESCAPES) == before
    rows = catalog_series(mirror.catalog_url)
    outcomes = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    for uid, says in expected_error.items():
        assert rows[uid].state is SeriesState.FAILED
        assert says in (rows[uid].last_error or ""), (uid, says, rows[uid].last_error)
        # the log names the series and the error too, one line per outcome
        assert any(o.get("series_uid") == uid and o.get("status") == "failed"
                   and says in o.get("error", "") for o in outcomes), (uid, err[-2000:])
    healthy = {uid: s for uid, s in truth.items() if uid not in expected_error}
    assert {rows[uid].state for uid in healthy} == {SeriesState.DONE}
    assert_archive_matches(mirror.root, healthy)  # and nothing of the failed ones

    sim.clear_faults()
    sim.reset_stats()
    code, summary, err, problems = run_watched(mirror, truth=truth)
    assert code == 0, err[-3000:]
    assert problems == [] and summary["failed_series"] == []
    assert_archive_matches(mirror.root, truth)
    # only the failed series are fetched again, each once
    assert image_downloads(sim.stats()) == len(expected_error)
    assert set(sim.stats()["series"]) == set(expected_error)



def test_broken_sop_endpoints_fall_back_to_the_series_zip(mirror: Mirror,
                                                          sim: SimulatorHandle) -> None:
    """NLST's SOP endpoints failed for months (TCIA_Notebooks#33): repairs must still land."""
    mirror.sync()
    before = sim.ground_truth()
    release = sim.publish_release(date.today(), revised=2)
    sim.add_fault("getSOPInstanceUIDs", "status", status=500)  # always
    sim.add_fault("getSingleImage", "status", status=500)
    sim.reset_stats()
    truth = sim.ground_truth()

    code, summary, err, problems = run_watched(mirror, truth=truth, before=before)

    assert code == 0, err[-3000:]
    assert problems == [] and summary["failed_series"] == []
    assert_archive_matches(mirror.root, truth)
    stats = sim.stats()
    assert set(stats["series"]) == set(release.revised_series_uids)
    assert image_downloads(stats) == len(release.revised_series_uids)


def test_cut_single_images_never_land_even_without_sizes(tmp_path: Path, sim: SimulatorHandle,
                                                          catalog_url: str) -> None:
    """v3 lists no FileSize and has no MD5s: a cut getSingleImage body still parses as DICOM."""
    mirror = write_mirror(tmp_path, base_url=sim.base_url("v3"), api="v3",
                          collections=sim.collections(), catalog_url=catalog_url,
                          verify="count", workers=6)
    mirror.sync()
    before = sim.ground_truth()
    release = sim.publish_release(date.today(), revised=1)
    sim.add_fault("getSingleImage", "truncate", fraction=0.5)  # a clean early end, always
    sim.reset_stats()
    truth = sim.ground_truth()

    code, summary, err, problems = run_watched(mirror, truth=truth, before=before)

    assert code == 0, err[-3000:]
    assert problems == [] and summary["failed_series"] == []
    assert_archive_matches(mirror.root, truth)
    stats = sim.stats()
    assert image_downloads(stats, "getSingleImage") >= 1  # tried, refused, then the ZIP
    assert image_downloads(stats) == len(release.revised_series_uids)
