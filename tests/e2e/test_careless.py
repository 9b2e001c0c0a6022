"""A careless user through the real CLI: flags, names, paths and overlapping runs.

Each case ends in one line on stderr with the documented exit code, never a traceback,
a hang or a silent success. Errors, secrets and the image's defaults:
test_careless_errors.py.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from mirror.domain import SeriesState
from mirror.simulator.testing import SimulatorHandle
from tests.e2e.careless import error_line, sqlite_mirror
from tests.e2e.harness import (
    assert_archive_matches,
    catalog_series,
    expected_files,
    write_mirror,
)

pytestmark = pytest.mark.slow


# --- 8. sync --collection, repeatable ---

def test_sync_collection_flag_is_repeatable_and_overrides_the_file(
        tmp_path: Path, two_collections: SimulatorHandle) -> None:
    sim = two_collections
    first, second = sim.collections()
    mirror = sqlite_mirror(tmp_path, sim, ["NOT-THIS-ONE"])
    summary = mirror.sync("--collection", first, "--collection", second)
    assert summary["outcome"] == "ok" and summary["collections"] == [first, second]
    assert_archive_matches(mirror.root, sim.ground_truth())


# --- 9. an archive root that cannot be written ---

def test_archive_root_below_a_regular_file_is_one_line_naming_archive_root(
        tmp_path: Path, simulator: SimulatorHandle) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a directory")
    mirror = sqlite_mirror(tmp_path, simulator, simulator.collections())
    text = mirror.config.read_text().replace(f'root = "{mirror.root}"',
                                             f'root = "{blocker / "archive"}"')
    mirror.config.write_text(text)
    proc = mirror.run("sync", timeout=60)
    assert proc.returncode == 2 and "archive.root" in error_line(proc)


def test_immutable_archive_root_ends_at_once_naming_archive_root(
        tmp_path: Path, simulator: SimulatorHandle, immutable_dir: Path) -> None:
    mirror = sqlite_mirror(tmp_path, simulator, simulator.collections())
    mirror.config.write_text(mirror.config.read_text().replace(
        f'root = "{mirror.root}"', f'root = "{immutable_dir}"'))
    proc = mirror.run("sync", timeout=60)  # it used to hang here forever, silently
    assert proc.returncode == 2 and "archive.root" in error_line(proc)


# --- 10. two overlapping one-shot syncs ---

def test_two_syncs_at_once_cooperate_and_fail_nothing(
        tmp_path: Path, slow_sim: SimulatorHandle, catalog_url: str) -> None:
    mirror = write_mirror(tmp_path, base_url=slow_sim.base_url("nbia-v4"), api="nbia-v4",
                          collections=slow_sim.collections(), catalog_url=catalog_url,
                          workers=2)
    first = mirror.popen("sync", "--json")
    staging = mirror.root / ".staging"
    # start the second while the first has downloads staged (not a sleep: it waits for
    # the first's staging directory to fill, checking the first is still alive)
    while not (staging.is_dir() and any(p.name[0].isdigit() for p in staging.iterdir())):
        try:
            first.wait(timeout=0.05)
        except subprocess.TimeoutExpired:
            continue
        raise AssertionError(f"first sync ended before staging anything: "
                             f"{first.communicate()}")
    second = mirror.popen("sync", "--json")
    results = [p.communicate(timeout=120) for p in (first, second)]
    for proc, (out, err) in zip((first, second), results, strict=True):
        assert proc.returncode == 0, f"exit {proc.returncode}\n{out}\n{err[-3000:]}"
        summary = json.loads(out)
        assert summary["outcome"] == "ok" and summary["failed"] == 0, summary
        assert summary["retried"] == 0, summary  # not even a retry caused by the other
    rows = catalog_series(catalog_url)
    assert {r.state for r in rows.values()} == {SeriesState.DONE}
    assert {r.attempts for r in rows.values()} == {1}, [
        (r.attempts, r.last_error) for r in rows.values()]
    assert_archive_matches(mirror.root, slow_sim.ground_truth())


# --- 11. a collection name the server does not have ---

def test_unknown_collection_is_refused_with_a_did_you_mean(
        tmp_path: Path, simulator: SimulatorHandle) -> None:
    [name] = simulator.collections()
    mirror = sqlite_mirror(tmp_path, simulator, [name + "G"])
    proc = mirror.run("sync", timeout=60)
    line = error_line(proc)
    assert proc.returncode == 2 and f"did you mean {name!r}" in line, line
    status = mirror.run("status", "--json", check=True)
    assert json.loads(status.stdout) == []  # no empty collection left behind


def test_collection_name_takes_the_servers_spelling(
        tmp_path: Path, simulator: SimulatorHandle) -> None:
    [name] = simulator.collections()
    mirror = sqlite_mirror(tmp_path, simulator, [name])
    mirror.sync()
    again = mirror.sync("--collection", name.lower())
    assert again["outcome"] == "ok" and again["collections"] == [name]
    assert again["done"] == 0  # the same collection, not a second one
    rows = json.loads(mirror.run("status", "--json", check=True).stdout)
    assert [r["collection"] for r in rows] == [name]


# --- 12. verify checks what the catalog holds ---

def test_verify_without_configured_collections_checks_the_whole_catalog(
        tmp_path: Path, two_collections: SimulatorHandle) -> None:
    sim = two_collections
    mirror = sqlite_mirror(tmp_path, sim, sim.collections())
    mirror.sync()
    # a config that names no collections (the default, LIDC-IDRI, is not in this catalog)
    text = "\n".join(ln for ln in mirror.config.read_text().splitlines()
                     if not ln.startswith("collections ="))
    mirror.config.write_text(text)
    victim = sorted(expected_files(sim.ground_truth()))[0]
    (mirror.root / victim).write_bytes(b"rot")
    proc = mirror.run("verify", "--json")
    report = json.loads(proc.stdout)
    assert report["checked"] == len(sim.ground_truth()), report
    assert proc.returncode == 1 and len(report["damaged"]) == 1, report
    narrowed = json.loads(mirror.run("verify", "--json", "--collection",
                                     sim.collections()[1]).stdout)
    per_collection = [s for s in sim.ground_truth().values()
                      if s.collection == sim.collections()[1]]
    assert narrowed["checked"] == len(per_collection)
