"""``tcia-mirror verify`` through the CLI: damage is reported, re-queued, repaired per instance."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mirror.domain import SeriesState
from tests.e2e.harness import (
    Mirror,
    assert_archive_matches,
    catalog_series,
    image_downloads,
    run_watched,
    write_mirror,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def mirror(tmp_path: Path, simulator: Any, catalog_url: str) -> Mirror:
    return write_mirror(tmp_path, base_url=simulator.base_url("nbia-v4"), api="nbia-v4",
                        collections=simulator.collections(), catalog_url=catalog_url)


def series_dir(mirror: Mirror, truth: Any) -> Path:
    return (mirror.root / truth.collection / truth.patient_id / truth.study_uid
            / truth.series_uid)


def damage(mirror: Mirror, truth: dict[str, Any]) -> dict[str, Path]:
    """One kind of damage per series; kind -> the damaged (or added) path."""
    first, second, third, fourth = (truth[uid] for uid in sorted(truth)[:4])
    paths = {kind: series_dir(mirror, s) / f"{sorted(s.instances)[0]}.dcm"
             for kind, s in (("missing", first), ("size", second), ("md5", third))}
    paths["missing"].unlink()
    data = paths["size"].read_bytes()
    paths["size"].write_bytes(data[: len(data) // 2])
    flipped = bytearray(paths["md5"].read_bytes())
    flipped[len(flipped) * 3 // 4] ^= 0x01  # in the pixel data: the header still parses
    paths["md5"].write_bytes(bytes(flipped))
    paths["extra"] = series_dir(mirror, fourth) / "stray.dcm"
    paths["extra"].write_bytes(b"not part of the series")
    return paths


def test_verify_reports_damage_and_repair_fetches_only_damaged_instances(
        mirror: Mirror, simulator: Any) -> None:
    truth = simulator.ground_truth()
    assert len(truth) >= 4
    mirror.sync()
    paths = damage(mirror, truth)

    found = mirror.run("verify")
    assert found.returncode == 1, found.stdout + found.stderr
    for kind, path in paths.items():
        assert any(f" {kind} {path}" in line for line in found.stdout.splitlines()), (
            kind, found.stdout)
    assert f"checked {len(truth)} series; 4 damaged found" in found.stdout, found.stdout

    requeued = mirror.run("verify", "--repair")
    assert requeued.returncode == 0, requeued.stdout + requeued.stderr
    assert "4 damaged re-queued for repair" in requeued.stdout
    rows = catalog_series(mirror.catalog_url)
    assert sum(r.state is SeriesState.QUEUED for r in rows.values()) == 4

    simulator.reset_stats()
    summary = mirror.sync()
    assert summary["outcome"] == "ok" and summary["done"] == 4
    stats = simulator.stats()
    assert image_downloads(stats) == 0, stats
    assert image_downloads(stats, "getSingleImage") == 3, stats  # missing, size, md5
    assert_archive_matches(mirror.root, truth)  # the stray file is gone too
    again = mirror.run("verify")
    assert again.returncode == 0, again.stdout
    assert f"checked {len(truth)} series; 0 damaged" in again.stdout


def test_repair_never_commits_a_damaged_single_image(mirror: Mirror, simulator: Any) -> None:
    """A corrupt getSingleImage body still parses as DICOM: the recorded MD5 must catch it."""
    truth = simulator.ground_truth()
    mirror.sync()
    victim = truth[sorted(truth)[0]]
    path = series_dir(mirror, victim) / f"{sorted(victim.instances)[0]}.dcm"
    path.unlink()
    assert mirror.run("verify", "--repair").returncode == 0
    simulator.add_fault("getSingleImage", "corrupt", bytes=2)  # every time
    simulator.reset_stats()

    code, _summary, err, problems = run_watched(mirror, truth=truth)

    assert code == 0, err[-3000:]
    assert problems == []
    stats = simulator.stats()
    assert image_downloads(stats, "getSingleImage") >= 1
    assert image_downloads(stats) == 1, stats  # the whole ZIP settled it, once
    assert_archive_matches(mirror.root, truth)
    assert mirror.run("verify").returncode == 0
