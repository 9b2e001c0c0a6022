"""Faults mid-stream, through the real CLI: what tests/e2e/test_faults.py does not cover.

test_faults.py breaks ZIPs at byte counts (status, Retry-After, reset at 3000 bytes,
clean or raw cuts, flipped bytes, hostile entry names, a cut getSingleImage on v3). The
classes here need the answer's structure, so a proxy (tests/hostile/midstream_proxy.py)
damages the simulator's real answers:

* a ZIP cut (cleanly, Content-Length matching) just after the local header of an entry;
* a ZIP whose central directory claims half an entry's real sizes;
* a connection reset in the middle of md5hashes.csv;
* 200 with an HTML error page instead of a ZIP, a listing, or a DICOM file;
* a getSeries listing cut mid-JSON with 200;
* a getSingleImage body cut mid-element in the DICOM header, and a getSOPInstanceUIDs
  answer cut mid-JSON with 200 (v4, during a repair).

For each: the sync ends, the damaged series or collection is failed with a reason, no file
that is not exactly the truth is ever at a final path (scanned while the sync runs), no
file appears outside the archive root, the other series complete, and a second sync
without the damage converges.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from io import BytesIO
from pathlib import Path

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
from tests.hostile.midstream_proxy import (
    HTML_ERROR,
    Damage,
    MidstreamProxy,
    entry_data_start,
    entry_index,
    lie_about_sizes,
    start_proxy,
)

pytestmark = pytest.mark.slow

SPEC = DatasetSpec(seed=11, collections=1, patients=2, studies=1, series=3, instances=3,
                   instance_size=4096)
ZIP_ENDPOINTS = ("getImage", "getImageWithMD5Hash")


@pytest.fixture
def sim(sim_data_dir: Path) -> Iterator[SimulatorHandle]:
    with start_simulator(sim_data_dir, SPEC) as handle:
        yield handle


@pytest.fixture
def proxy(sim: SimulatorHandle) -> Iterator[MidstreamProxy]:
    with start_proxy(sim.url) as handle:
        yield handle


def mirror_via(tmp_path: Path, sim: SimulatorHandle, proxy: MidstreamProxy) -> Mirror:
    base = proxy.url + sim.base_url("nbia-v4").removeprefix(sim.url)
    return write_mirror(tmp_path, base_url=base, api="nbia-v4", collections=sim.collections(),
                        catalog_url=f"sqlite+aiosqlite:///{tmp_path / 'catalog.db'}",
                        workers=4)


def files_outside_root(tmp_path: Path, root: Path) -> set[str]:
    """Every file under the test's tmp dir but outside the archive root (catalog aside)."""
    return {str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")
            if p.is_file() and root not in p.parents and not p.name.startswith("catalog.db")}


def middle_of(name: str) -> Damage:
    """Reset the connection halfway through the stored bytes of entry *name*."""

    def at(data: bytes) -> int:
        index = entry_index(data, name)
        size = zipfile.ZipFile(BytesIO(data)).infolist()[index].compress_size
        return entry_data_start(data, index) + size // 2

    return Damage(reset_at=at)


HTML_200 = Damage(body=lambda _: HTML_ERROR, status=200, content_type="text/html")

def cut_after_local_header(data: bytes) -> bytes:
    return data[:entry_data_start(data, 1)]


#: damaged ZIP answers, one per series: (name, damage, what the recorded error says)
ZIP_DAMAGES = [
    ("cut after the local header of entry 2", Damage(body=cut_after_local_header),
     "TruncatedArchive"),
    ("central directory lies about sizes", Damage(body=lie_about_sizes), "Bad CRC-32"),
    ("reset mid md5hashes.csv", middle_of("md5hashes.csv"), "connection lost"),
    ("200 with an HTML error page", HTML_200, "not a complete ZIP"),
]


def test_damaged_zips_fail_their_series_and_converge(tmp_path: Path, sim: SimulatorHandle,
                                                     proxy: MidstreamProxy) -> None:
    mirror = mirror_via(tmp_path, sim, proxy)
    truth = sim.ground_truth()
    uids = sorted(truth)
    damaged = dict(zip(uids, ZIP_DAMAGES, strict=False))
    for uid, (_, damage, _) in damaged.items():
        for endpoint in ZIP_ENDPOINTS:
            proxy.damage(endpoint, uid, damage)
    outside = files_outside_root(tmp_path, mirror.root)

    code, summary, err, problems = run_watched(mirror, truth=truth)

    assert code == 1, err[-3000:]
    assert problems == []
    assert files_outside_root(tmp_path, mirror.root) == outside
    assert {key for (_, key) in proxy.fired} == set(damaged)  # every damage was sent
    assert sorted(summary["failed_series"]) == sorted(damaged)
    rows = catalog_series(mirror.catalog_url)
    for uid, (name, _, says) in damaged.items():
        assert rows[uid].state is SeriesState.FAILED, name
        assert says in (rows[uid].last_error or ""), (name, rows[uid].last_error)
    healthy = {uid: s for uid, s in truth.items() if uid not in damaged}
    assert healthy and {rows[uid].state for uid in healthy} == {SeriesState.DONE}
    assert_archive_matches(mirror.root, healthy)

    proxy.clear()
    code, summary, err, problems = run_watched(mirror, truth=truth)
    assert code == 0, err[-3000:]
    assert problems == [] and summary["failed_series"] == []
    assert_archive_matches(mirror.root, truth)
    assert files_outside_root(tmp_path, mirror.root) == outside


def test_damaged_listings_fail_their_collection_and_converge(
        tmp_path: Path, sim_data_dir: Path) -> None:
    spec = DatasetSpec(seed=12, collections=3, patients=1, studies=1, series=2, instances=2,
                       instance_size=2048)
    with start_simulator(sim_data_dir, spec) as sim, start_proxy(sim.url) as proxy:
        mirror = mirror_via(tmp_path, sim, proxy)
        cut, html, fine = sim.collections()
        proxy.damage("getSeries", cut, Damage(body=lambda d: d[: len(d) // 2]))
        proxy.damage("getSeries", html, HTML_200)
        outside = files_outside_root(tmp_path, mirror.root)
        truth = sim.ground_truth()

        code, summary, err, problems = run_watched(mirror, truth=truth)

        assert code == 1, err[-3000:]
        assert problems == []
        assert files_outside_root(tmp_path, mirror.root) == outside
        assert {key for (_, key) in proxy.fired} == {cut, html}
        assert set(summary["failed_collections"]) == {cut, html}
        reasons = summary["failed_collections"]
        assert "malformed JSON" in reasons[cut] and "HTML" in reasons[html], reasons
        assert "Traceback" not in err
        assert_archive_matches(mirror.root, sim.ground_truth(fine))

        proxy.clear()
        code, summary, err, problems = run_watched(mirror, truth=truth)
        assert code == 0, err[-3000:]
        assert problems == [] and not summary.get("failed_collections")
        assert_archive_matches(mirror.root, truth)
        assert files_outside_root(tmp_path, mirror.root) == outside


def dicom_cut_mid_element(data: bytes) -> bytes:
    """Cut inside the second element of the file meta group (after preamble, DICM, 0002,0000)."""
    assert data[128:132] == b"DICM"
    return data[:150]


def test_damaged_single_images_never_land_and_converge(tmp_path: Path, sim: SimulatorHandle,
                                                       proxy: MidstreamProxy) -> None:
    mirror = mirror_via(tmp_path, sim, proxy)
    mirror.sync()
    before = sim.ground_truth()
    release = sim.publish_release(date.today(), revised=3)
    cut_uid, html_uid, list_uid = sorted(release.revised_series_uids)
    proxy.damage("getSOPInstanceUIDs", list_uid, Damage(body=lambda d: d[: len(d) // 2]))
    proxy.damage("getSingleImage", cut_uid, Damage(body=dicom_cut_mid_element))
    proxy.damage("getSingleImage", html_uid, HTML_200)
    truth = sim.ground_truth()
    outside = files_outside_root(tmp_path, mirror.root)
    zips_before = image_downloads(sim.stats(), *ZIP_ENDPOINTS)

    code, summary, err, problems = run_watched(mirror, truth=truth, before=before)

    # both refused; each repair falls back to the series ZIP within the same sync
    assert code == 0, err[-3000:]
    assert problems == [] and summary["failed_series"] == []
    assert files_outside_root(tmp_path, mirror.root) == outside
    assert {key for (_, key) in proxy.fired} == {cut_uid, html_uid, list_uid}
    assert_archive_matches(mirror.root, truth)
    assert image_downloads(sim.stats(), *ZIP_ENDPOINTS) - zips_before == 3

    proxy.clear()  # and a second sync has nothing left to do
    code, summary, err, problems = run_watched(mirror, truth=truth, before=before)
    assert code == 0, err[-3000:]
    assert problems == [] and summary["done"] == 0 and summary["failed_series"] == []
    assert_archive_matches(mirror.root, truth)


def test_damage_once_is_retried_within_the_sync(tmp_path: Path, sim: SimulatorHandle,
                                                proxy: MidstreamProxy) -> None:
    """The same damage, sent once: the series is retried and lands in the same sync."""
    mirror = mirror_via(tmp_path, sim, proxy)
    truth = sim.ground_truth()
    damaged = dict(zip(sorted(truth), ZIP_DAMAGES, strict=False))
    for uid, (_, damage, _) in damaged.items():
        for endpoint in ZIP_ENDPOINTS:
            proxy.damage(endpoint, uid, replace(damage, times=1))

    code, summary, err, problems = run_watched(mirror, truth=truth)

    assert code == 0, err[-3000:]
    assert problems == [] and summary["failed_series"] == []
    assert dict(proxy.fired) == {(endpoint, uid): 1 for uid in damaged
                                 for endpoint in ("getImage",)}
    assert_archive_matches(mirror.root, truth)
    rows = catalog_series(mirror.catalog_url)
    assert {r.state for r in rows.values()} == {SeriesState.DONE}
