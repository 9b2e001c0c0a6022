"""End to end through the CLI against the simulator, on SQLite and on Postgres."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import Mirror, assert_archive_matches, write_mirror

pytestmark = pytest.mark.slow


def image_requests(stats: dict[str, Any]) -> int:
    return sum(n for k, n in stats["requests"].items()
               if k.split(":")[-1] in ("getImage", "getImageWithMD5Hash"))


def single_requests(stats: dict[str, Any]) -> int:
    return sum(n for k, n in stats["requests"].items() if k.endswith(":getSingleImage"))


@pytest.fixture
def mirror(tmp_path: Path, simulator: Any, catalog_url: str) -> Mirror:
    return write_mirror(tmp_path, base_url=simulator.base_url("nbia-v4"), api="nbia-v4",
                        collections=simulator.collections(), catalog_url=catalog_url)


def test_fresh_sync_equals_ground_truth_then_resync_is_cheap(mirror: Mirror,
                                                             simulator: Any) -> None:
    summary = mirror.sync()
    assert summary["outcome"] == "ok" and summary["failed"] == 0
    assert_archive_matches(mirror.root, simulator.ground_truth())

    simulator.reset_stats()
    again = mirror.sync()
    stats = simulator.stats()
    assert again["done"] == 0 and again["bytes"] == 0
    assert image_requests(stats) == 0 and single_requests(stats) == 0
    assert stats["requests_total"] <= 3 * len(simulator.collections())
    assert_archive_matches(mirror.root, simulator.ground_truth())


def test_releases_converge_and_revisions_are_repaired_per_instance(
        tmp_path: Path, simulator: Any, catalog_url: str) -> None:
    mirror = write_mirror(tmp_path, base_url=simulator.base_url("nbia-v4"), api="nbia-v4",
                          collections=simulator.collections(), catalog_url=catalog_url,
                          extra="max_delete_fraction = 0.5")
    mirror.sync()
    release = simulator.publish_release(date.today(), new_patients=1, new_studies=1,
                                        new_series=1, revised=1, withdrawn=1)
    simulator.reset_stats()
    summary = mirror.sync()
    assert summary["outcome"] == "ok"
    stats = simulator.stats()
    # only brand-new series come as ZIPs; the revised one is patched instance by instance
    assert image_requests(stats) == len(release.new_series_uids), stats
    assert single_requests(stats) >= 1
    truth = simulator.ground_truth()
    # withdrawn series are only noticed by a reconcile, and their files are kept
    assert_archive_matches(mirror.root, truth, allow_extra=True)
    reconciled = mirror.sync("--reconcile")
    assert sum(p["retire"] for p in reconciled["plan"].values()) == 1
    status = json.loads(mirror.run("status", "--json", check=True).stdout)
    assert sum(row["retired"] for row in status) == 1
    assert sum(row["done"] for row in status) == len(truth)
    assert_archive_matches(mirror.root, truth, allow_extra=True)  # retired files are kept


def test_dry_run_plans_and_changes_nothing(mirror: Mirror, simulator: Any) -> None:
    proc = mirror.run("sync", "--dry-run", "--json", check=True)
    assert '"add"' in proc.stdout
    truth = simulator.ground_truth()
    total = sum(1 for _ in truth)
    assert f'"add": {total}' in proc.stdout
    assert not mirror.root.exists() or not any(mirror.root.rglob("*.dcm"))
    assert mirror.sync()["done"] == total


def test_failed_discovery_is_reported_in_the_summary(mirror: Mirror, simulator: Any) -> None:
    simulator.add_fault("getSeries", "status", status=500)
    proc = mirror.run("sync", "--json")
    assert proc.returncode == 1
    summary = json.loads(proc.stdout)
    assert summary["outcome"] == "failed"
    assert set(summary["failed_collections"]) == set(simulator.collections())
    assert all("500" in error for error in summary["failed_collections"].values())


def test_descriptive_layout_names_studies_and_series_like_the_retriever(
        tmp_path: Path, simulator: Any) -> None:
    mirror = write_mirror(tmp_path, base_url=simulator.base_url("nbia-v1"), api="nbia-v1",
                          collections=simulator.collections(), layout="descriptive",
                          catalog_url=f"sqlite+aiosqlite:///{tmp_path}/catalog.db")
    assert mirror.sync()["outcome"] == "ok"
    truth = simulator.ground_truth()
    stored = {p.name: p for p in mirror.root.rglob("*.dcm") if ".staging" not in p.parts}
    for series in truth.values():
        for sop, inst in series.instances.items():
            path = stored.pop(f"{sop}.dcm")
            assert path.stat().st_size == inst.size
            study_dir, series_dir = path.parent.parent.name, path.parent.name
            assert study_dir.endswith(series.study_uid[-5:]) and study_dir != series.study_uid
            assert series_dir.endswith(series.series_uid[-5:])
            assert path.parent.parent.parent.name == series.patient_id
    assert not stored
    assert mirror.run("verify").returncode == 0
    simulator.reset_stats()
    assert mirror.sync()["done"] == 0
    assert image_requests(simulator.stats()) == 0


def test_new_instances_of_a_revised_series_are_checked_against_the_server_md5(
        tmp_path: Path, simulator: Any) -> None:
    mirror = write_mirror(tmp_path, base_url=simulator.base_url("nbia-v4"), api="nbia-v4",
                          collections=simulator.collections(),
                          catalog_url=f"sqlite+aiosqlite:///{tmp_path}/catalog.db")
    mirror.sync()
    simulator.publish_release(date.today(), revised=1)
    simulator.add_fault("getSingleImage", "corrupt", count=1)
    simulator.reset_stats()
    summary = mirror.sync()
    assert summary["outcome"] == "ok", summary
    stats = simulator.stats()
    assert stats["requests"].get("nbia-v4:getMD5HashForImage", 0) >= 1
    # the corrupt instance parses and has the right size: only its MD5 gives it away,
    # and the repair falls back to the verified ZIP
    assert image_requests(stats) == 1
    assert_archive_matches(mirror.root, simulator.ground_truth())
