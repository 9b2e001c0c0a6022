"""Manifests in and out, end to end through the CLI against the simulator."""

from __future__ import annotations

import json
import math
import signal
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from mirror.simulator import releases
from mirror.simulator.testing import DatasetSpec, SimulatorHandle, start_simulator
from mirror.sync.manifest import format_manifest, parse_manifest
from mirror.sync.manifest_discovery import LOOKUP_BATCH
from tests.e2e.harness import (
    Mirror,
    archive_files,
    assert_archive_matches,
    catalog_series,
    write_mirror,
)
from tests.e2e.test_daemon import free_port, running, wait_for

pytestmark = pytest.mark.slow

SPEC = DatasetSpec(seed=3, collections=2, patients=2, studies=1, series=3, instances=2)


@pytest.fixture(scope="module")
def two_collections_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sim-two-collections")


@pytest.fixture
def sim2(two_collections_dir: Path) -> Iterator[SimulatorHandle]:
    with start_simulator(two_collections_dir, SPEC) as handle:
        yield handle


def _mirror(tmp_path: Path, sim: SimulatorHandle, catalog_url: str, **kw: Any) -> Mirror:
    # the config names every collection: --manifest alone must still sync only the manifest
    return write_mirror(tmp_path, base_url=sim.base_url("nbia-v4"), api="nbia-v4",
                        collections=sim.collections(), catalog_url=catalog_url,
                        extra="max_delete_fraction = 0.5", **kw)


def _write(path: Path, uids: list[str]) -> Path:
    path.write_text(format_manifest(uids).replace("\n", "\r\n"))  # as saved on Windows
    return path


def _image_series(stats: dict[str, Any]) -> set[str]:
    return set(stats["series"])


def _metadata_requests(stats: dict[str, Any]) -> int:
    return stats["requests"].get("nbia-v4:getSeriesMetadata", 0)


def test_manifest_mirrors_exactly_its_series_and_follows_revisions_and_withdrawals(
        tmp_path: Path, sim2: SimulatorHandle, catalog_url: str) -> None:
    coll_a, coll_b = sim2.collections()
    today = date.today()
    # releases.apply is pure: learn which series the coming release revises and withdraws
    _, upcoming, _ = releases.apply(sim2.sim.catalog, today, revised=1, withdrawn=1,
                                    collection=coll_a)
    revised, withdrawn = upcoming.revised_series_uids[0], upcoming.withdrawn_series_uids[0]
    assert revised != withdrawn
    truth = sim2.ground_truth()
    in_b = sorted(u for u, s in truth.items() if s.collection == coll_b)[:2]
    other_a = sorted(u for u, s in truth.items() if s.collection == coll_a
                     and u not in (revised, withdrawn))[:1]
    wanted = [revised, withdrawn, *other_a, *in_b]
    manifest = _write(tmp_path / "cart.tcia", wanted)
    mirror = _mirror(tmp_path, sim2, catalog_url)

    first = mirror.sync("--manifest", str(manifest))
    assert first["outcome"] == "ok" and first["done"] == len(wanted)
    stats = sim2.stats()
    assert _image_series(stats) == set(wanted)  # nothing else was fetched
    assert _metadata_requests(stats) == 1
    assert "nbia-v4:getSeries" not in stats["requests"]  # no collection listing
    assert_archive_matches(mirror.root, {u: truth[u] for u in wanted})
    key = str(manifest.resolve())
    assert sorted(first["manifests"][key]["collections"]) == [coll_a, coll_b]

    release = sim2.publish_release(today, revised=1, withdrawn=1, collection=coll_a)
    assert release.revised_series_uids == (revised,)
    sim2.reset_stats()
    second = mirror.sync("--manifest", str(manifest))
    plan = second["manifests"][key]
    assert second["outcome"] == "ok"
    assert plan["repair"] + plan["refetch"] == 1 and plan["retire"] == 1
    assert _image_series(sim2.stats()) <= {revised}
    new_truth = sim2.ground_truth()
    kept = [u for u in wanted if u != withdrawn]
    assert_archive_matches(mirror.root, {u: new_truth[u] for u in kept}, allow_extra=True)
    rows = catalog_series(catalog_url)
    assert rows[withdrawn].state == "retired" and rows[revised].state == "done"
    assert set(rows) == set(wanted)  # no series outside the manifest entered the catalog

    sim2.reset_stats()
    third = mirror.sync("--manifest", str(manifest))
    assert third["done"] == 0 and _image_series(sim2.stats()) == set()
    assert sim2.stats()["requests_total"] <= 2


def test_manifest_from_the_config_file(tmp_path: Path, sim2: SimulatorHandle,
                                       catalog_url: str) -> None:
    uid = sorted(sim2.ground_truth())[0]
    manifest = _write(tmp_path / "one.tcia", [uid])
    mirror = write_mirror(tmp_path, base_url=sim2.base_url("nbia-v4"), api="nbia-v4",
                          collections=[], catalog_url=catalog_url,
                          extra=f"manifests = [{json.dumps(str(manifest))}]")
    summary = mirror.sync()
    assert summary["done"] == 1 and _image_series(sim2.stats()) == {uid}
    checked = json.loads(mirror.run("verify", "--json", check=True).stdout)
    assert checked["checked"] == 1 and checked["damaged"] == {}


def test_lookups_are_batched(tmp_path: Path, sim2: SimulatorHandle, catalog_url: str) -> None:
    real = sorted(sim2.ground_truth())
    unknown = [f"1.2.826.0.1.3680043.99.{i}" for i in range(2 * LOOKUP_BATCH + 7)]
    listed = real + unknown
    manifest = _write(tmp_path / "big.tcia", listed)
    mirror = _mirror(tmp_path, sim2, catalog_url)
    summary = mirror.sync("--manifest", str(manifest))
    assert summary["done"] == len(real)
    assert _metadata_requests(sim2.stats()) == math.ceil(len(listed) / LOOKUP_BATCH) == 3
    report = summary["manifests"][str(manifest.resolve())]
    assert report["missing_count"] == len(unknown)
    assert set(report["missing"]) <= set(unknown) and len(report["missing"]) == 1000


@pytest.mark.parametrize(("body", "line"), [
    ("downloadServerUrl=x\nListOfSeriesToDownload=\n1.2.3\nnot-a-uid\n", 4),
    ("downloadServerUrl=x\r\nincludeAnnotation=true\r\nbad header=1\r\n", 3),
])
def test_malformed_manifest_is_one_line_and_exit_2(tmp_path: Path, sim2: SimulatorHandle,
                                                   body: str, line: int) -> None:
    path = tmp_path / "bad.tcia"
    path.write_text(body)
    mirror = _mirror(tmp_path, sim2, f"sqlite+aiosqlite:///{tmp_path / 'c.db'}")
    proc = mirror.run("sync", "--manifest", str(path))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and f"bad.tcia: line {line}: " in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert sim2.stats()["requests_total"] == 0
    missing = mirror.run("sync", "--manifest", str(tmp_path / "nope.tcia"))
    assert missing.returncode == 2 and "cannot be read" in missing.stderr


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_export_round_trips_through_tcia_utils_and_our_parser(
        tmp_path: Path, sim2: SimulatorHandle, catalog_url: str) -> None:
    nbia = pytest.importorskip("tcia_utils.nbia")
    mirror = _mirror(tmp_path, sim2, catalog_url)
    mirror.sync(check=True)
    truth = sim2.ground_truth()
    out = tmp_path / "export.tcia"
    proc = mirror.run("manifest", "export", "-o", str(out), check=True)
    assert proc.stdout == ""
    assert sorted(nbia.manifestToList(str(out))) == sorted(truth)
    assert sorted(parse_manifest(out.read_bytes()).series_uids) == sorted(truth)
    assert out.read_text().startswith("downloadServerUrl=")

    coll_b = sim2.collections()[1]
    only_b = mirror.run("manifest", "export", "--collection", coll_b, check=True).stdout
    in_b = {u for u, s in truth.items() if s.collection == coll_b}
    assert set(parse_manifest(only_b.encode()).series_uids) == in_b

    # what we export, we can mirror again elsewhere: the same series, nothing else
    (tmp_path / "again").mkdir()
    other = _mirror(tmp_path / "again", sim2, f"sqlite+aiosqlite:///{tmp_path / 'again.db'}")
    again = other.sync("--manifest", str(out))
    assert again["done"] == len(truth)
    assert {k for k in archive_files(other.root) if not k.endswith("metadata.csv")} == \
        {k for k in archive_files(mirror.root) if not k.endswith("metadata.csv")}


def test_daemon_keeps_a_config_manifest_and_writes_metadata_csv(
        tmp_path: Path, simulator: SimulatorHandle) -> None:
    truth = simulator.ground_truth()
    wanted = sorted(truth)[:2]
    manifest = _write(tmp_path / "cart.tcia", wanted)
    port = free_port()
    mirror = write_mirror(
        tmp_path, base_url=simulator.base_url("nbia-v4"), api="nbia-v4", collections=[],
        catalog_url=f"sqlite+aiosqlite:///{tmp_path / 'c.db'}",
        extra=f'manifests = [{json.dumps(str(manifest))}]\npoll_interval = "1h"\n'
              f'[daemon]\nlisten = "127.0.0.1:{port}"\nshutdown_timeout = "5s"\n')
    collection = truth[wanted[0]].collection
    ledger = mirror.root / collection / "metadata.csv"

    def rows() -> set[str]:
        if not ledger.exists():
            return set()
        return {line.split(",", 1)[0] for line in ledger.read_text().splitlines()[1:]}

    with running(mirror.popen("daemon")) as proc:
        wait_for("metadata.csv lists the manifest's series", lambda: rows() == set(wanted))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    assert_archive_matches(mirror.root, {u: truth[u] for u in wanted})
    assert set(simulator.stats()["series"]) == set(wanted)


@pytest.mark.parametrize("api", ["nbia-v1", "v3"])
def test_without_batch_lookup_known_series_are_relisted_per_study(
        tmp_path: Path, sim2: SimulatorHandle, api: str) -> None:
    truth = sim2.ground_truth()
    first_study, second_study = sorted({s.study_uid for s in truth.values()})[:2]
    wanted = sorted(u for u, s in truth.items() if s.study_uid == first_study)
    wanted += sorted(u for u, s in truth.items() if s.study_uid == second_study)[:1]
    manifest = _write(tmp_path / "cart.tcia", wanted)
    mirror = write_mirror(tmp_path, base_url=sim2.base_url(api), api=api, collections=[],
                          catalog_url=f"sqlite+aiosqlite:///{tmp_path / 'c.db'}",
                          verify="count")
    first = mirror.sync("--manifest", str(manifest))
    assert first["done"] == len(wanted) and set(sim2.stats()["series"]) == set(wanted)
    sim2.reset_stats()
    again = mirror.sync("--manifest", str(manifest))
    assert again["done"] == 0
    listings = sum(n for k, n in sim2.stats()["requests"].items() if k.endswith(":getSeries"))
    assert listings == 2 < len(wanted)  # one getSeries per study, not per series


def test_dry_run_plans_the_manifest_and_changes_nothing(
        tmp_path: Path, sim2: SimulatorHandle) -> None:
    truth = sim2.ground_truth()
    wanted = sorted(truth)[:3]
    manifest = _write(tmp_path / "cart.tcia", wanted)
    catalog_url = f"sqlite+aiosqlite:///{tmp_path / 'c.db'}"
    mirror = _mirror(tmp_path, sim2, catalog_url)
    proc = mirror.run("sync", "--manifest", str(manifest), "--dry-run", "--json", check=True)
    plan = json.loads(proc.stdout)["plan"][f"manifest {manifest.resolve()}"]
    assert plan["add"] == len(wanted)
    assert plan["bytes"] == sum(truth[u].file_size for u in wanted)
    assert _image_series(sim2.stats()) == set()
    assert catalog_series(catalog_url) == {}
    text = mirror.run("sync", "--manifest", str(manifest), "--dry-run", check=True).stdout
    assert f"manifest {manifest.resolve()}: add {len(wanted)}," in text


def test_a_failing_lookup_is_reported_and_the_collections_go_on(
        tmp_path: Path, sim2: SimulatorHandle, catalog_url: str) -> None:
    manifest = _write(tmp_path / "cart.tcia", sorted(sim2.ground_truth())[:1])
    sim2.add_fault("getSeriesMetadata", "status", status=400, body="Bad request")
    coll_a = sim2.collections()[0]
    mirror = _mirror(tmp_path, sim2, catalog_url)
    summary = mirror.sync("--manifest", str(manifest), "--collection", coll_a, check=False)
    assert summary["outcome"] == "failed"
    assert list(summary["failed_collections"]) == [f"manifest {manifest.resolve()}"]
    assert summary["done"] == len(sim2.ground_truth(coll_a))  # the collection was mirrored
