"""Exactness on NBIA v4, end to end through the CLI against the simulator.

v4 dates are day-only: revisions that keep ImageCount and FileSize show in no listing
and are found by the MD5-hierarchy check; a catalog filled through another dialect is
not re-checked because timestamps are compared at the granularity the dialect gives.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from mirror.catalog import Catalog
from mirror.simulator.testing import DatasetSpec, SimulatorHandle, start_simulator
from mirror.sync.hashtree import build_trees, collection_hash
from tests.e2e.harness import Mirror, assert_archive_matches, write_mirror

pytestmark = pytest.mark.slow

FAST_HASHES = "hash_requests_per_second = 0\n"  # unlimited: the budget is not under test here


def requests_to(stats: dict[str, Any], *endpoints: str) -> int:
    return sum(n for k, n in stats["requests"].items() if k.split(":")[-1] in endpoints)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'catalog.db'}"


def switch_dialect(mirror: Mirror, simulator: Any, api: str) -> None:
    text = mirror.config.read_text()
    for old in ("nbia-v1", "nbia-v4", "v3"):
        text = text.replace(f'api = "{old}"', f'api = "{api}"').replace(
            simulator.base_url(old), simulator.base_url(api))
    mirror.config.write_text(text)


@pytest.mark.parametrize("filled_by", ["nbia-v1", "v3"])
def test_catalog_filled_by_another_dialect_synced_through_v4_fetches_nothing(
        tmp_path: Path, simulator: Any, sqlite_url: str, filled_by: str) -> None:
    mirror = write_mirror(tmp_path, base_url=simulator.base_url(filled_by), api=filled_by,
                          collections=simulator.collections(), catalog_url=sqlite_url,
                          extra=FAST_HASHES)
    assert mirror.sync()["outcome"] == "ok"
    switch_dialect(mirror, simulator, "nbia-v4")
    simulator.reset_stats()
    summary = mirror.sync("--reconcile")
    stats = simulator.stats()
    assert summary["outcome"] == "ok" and summary["done"] == 0, summary
    plan = summary["plan"][simulator.collections()[0]]
    assert plan["repair"] == plan["refetch"] == plan["add"] == 0, plan
    assert requests_to(stats, "getImage", "getImageWithMD5Hash", "getSingleImage") == 0
    assert requests_to(stats, "getSOPInstanceUIDs") == 0
    assert_archive_matches(mirror.root, simulator.ground_truth())


def test_each_collection_keeps_its_license(tmp_path: Path, simulator: Any,
                                           sqlite_url: str) -> None:
    mirror = write_mirror(tmp_path, base_url=simulator.base_url("nbia-v4"), api="nbia-v4",
                          collections=simulator.collections(), catalog_url=sqlite_url)
    assert mirror.sync()["outcome"] == "ok"
    for name in simulator.collections():
        text = (mirror.root / name / "LICENSE").read_text()
        assert name in text, text[:200]
    assert not list((mirror.root / ".staging").glob("**/LICENSE*"))
    rows = json.loads(mirror.run("status", "--json", check=True).stdout)
    assert {r["collection"] for r in rows} == set(simulator.collections())


def local_collection_hash(catalog_url: str, collection: str) -> str:
    """The collection hash computed from the catalog, as the mirror computes it."""
    async def compute() -> str:
        catalog = await Catalog.open(catalog_url, upgrade=False)
        try:
            patients = await catalog.hash_patients(collection, after=None, limit=10_000)
            trees = build_trees(await catalog.hash_rows(collection, patients))
        finally:
            await catalog.close()
        return collection_hash(t.patient_hash() for t in trees.values())
    return asyncio.run(compute())


@pytest.fixture
def five_patients(sim_data_dir: Path) -> Iterator[SimulatorHandle]:
    with start_simulator(sim_data_dir, DatasetSpec(patients=5)) as handle:
        yield handle


def test_silent_revisions_converge_hash_for_hash_in_one_reconcile(
        tmp_path: Path, five_patients: SimulatorHandle, catalog_url: str) -> None:
    sim = five_patients
    (collection,) = sim.collections()
    mirror = write_mirror(tmp_path, base_url=sim.base_url("nbia-v4"), api="nbia-v4",
                          collections=[collection], catalog_url=catalog_url,
                          extra=FAST_HASHES)
    assert mirror.sync()["outcome"] == "ok"
    unchanged = local_collection_hash(catalog_url, collection)
    assert unchanged == sim.md5_hierarchy_now(collection)

    victims = sorted(sim.ground_truth())[1:4:2]  # two series of different patients
    release = sim.publish_release(date.today(), silent_series=tuple(victims))
    assert sorted(release.silent_revised_series_uids) == victims
    assert sim.md5_hierarchy_now(collection) != unchanged  # the served one is still stale

    sim.reset_stats()
    summary = mirror.sync("--reconcile")
    stats = sim.stats()
    assert summary["outcome"] == "ok" and summary["done"] == 2, summary
    check = summary["hash_check"][collection]
    # the stale collection hash still equals what we held: it proved nothing
    assert check["collection_hint"] == "equal"
    assert (check["patients"], check["changed"], check["complete"]) == (5, 2, True)
    assert sorted(stats["series"]) == victims  # image downloads of those two series only
    assert requests_to(stats, "getImage", "getImageWithMD5Hash") == 0  # one instance each
    assert requests_to(stats, "getSingleImage") == 2
    assert_archive_matches(mirror.root, sim.ground_truth())
    assert local_collection_hash(catalog_url, collection) == sim.md5_hierarchy_now(collection)

    # (d) status: when the last full hash check ran and what it found
    rows = json.loads(mirror.run("status", "--json", check=True).stdout)
    assert rows[0]["last_hash_check"] is not None and rows[0]["last_hash_check_changed"] == 2
    table = mirror.run("status", check=True).stdout
    assert "last full hash check" in table and "2 changed" in table, table

    # converged: the next full pass finds nothing and costs one request per patient
    # (plus the collection hint)
    sim.reset_stats()
    again = mirror.sync("--reconcile")
    assert again["hash_check"][collection]["changed"] == 0
    assert requests_to(sim.stats(), "getMD5Hierarchy") == 5 + 1
    assert requests_to(sim.stats(), "getImage", "getSingleImage") == 0


def test_two_sources_mirror_both(tmp_path: Path, simulator: SimulatorHandle,
                                 second_simulator: SimulatorHandle, sqlite_url: str) -> None:
    (first,) = simulator.collections()
    (nlst,) = second_simulator.collections()
    extra = (FAST_HASHES + '\n[sources.nlst]\napi = "nbia-v4"\n'
             f'base_url = "{second_simulator.base_url("nbia-v4")}"\n')
    mirror = write_mirror(tmp_path, base_url=simulator.base_url("nbia-v4"), api="nbia-v4",
                          collections=[first, f"nlst:{nlst}"], catalog_url=sqlite_url,
                          extra=extra)
    summary = mirror.sync()
    assert summary["outcome"] == "ok" and summary["collections"] == [first, nlst], summary
    assert_archive_matches(mirror.root, {**simulator.ground_truth(),
                                         **second_simulator.ground_truth()})
    assert requests_to(simulator.stats(), "getImage") == len(simulator.ground_truth())
    assert requests_to(second_simulator.stats(), "getImage") == len(
        second_simulator.ground_truth())
    rows = {r["collection"]: r for r in json.loads(
        mirror.run("status", "--json", check=True).stdout)}
    assert (rows[first]["source"], rows[nlst]["source"]) == (None, "nlst")
    assert mirror.sync()["done"] == 0  # in sync on both hosts


def test_server_md5_strings_unlike_our_digest_are_no_change(
        tmp_path: Path, five_patients: SimulatorHandle, sqlite_url: str) -> None:
    """Stored without leading zeros, or blank: the catalog keeps the server's string, so
    the hierarchy computed locally equals the server's and a reconcile finds nothing."""
    sim = five_patients
    (collection,) = sim.collections()
    stored = sim.set_stored_md5(short=1, blank=1)
    assert sorted(v for v in stored.values() if v is not None)[0] == " "
    mirror = write_mirror(tmp_path, base_url=sim.base_url("nbia-v4"), api="nbia-v4",
                          collections=[collection], catalog_url=sqlite_url,
                          extra=FAST_HASHES)
    assert mirror.sync()["outcome"] == "ok"
    assert local_collection_hash(sqlite_url, collection) == sim.md5_hierarchy_now(collection)
    sim.reset_stats()
    summary = mirror.sync("--reconcile")
    assert summary["hash_check"][collection]["changed"] == 0, summary
    assert requests_to(sim.stats(), "getImage", "getSingleImage", "getSOPInstanceUIDs") == 0
    assert_archive_matches(mirror.root, sim.ground_truth())


def test_daemon_mirrors_two_sources_and_its_scrub_finds_a_silent_revision(
        tmp_path: Path, simulator: SimulatorHandle, second_simulator: SimulatorHandle,
        sqlite_url: str) -> None:
    """The daemon polls each collection through its own host; its rolling scrub (every
    patient once per reconcile_interval) repairs a revision no listing shows."""
    import signal

    from tests.e2e.test_daemon import archive_converged, free_port, running, wait_for

    (first,) = simulator.collections()
    (nlst,) = second_simulator.collections()
    port = free_port()
    extra = ('poll_interval = "1s"\nreconcile_interval = "3s"\n' + FAST_HASHES
             + f'\n[sources.nlst]\nbase_url = "{second_simulator.base_url("nbia-v4")}"\n'
             f'\n[daemon]\nlisten = "127.0.0.1:{port}"\nshutdown_timeout = "5s"\n')
    mirror = write_mirror(tmp_path, base_url=simulator.base_url("nbia-v4"), api="nbia-v4",
                          collections=[first, f"nlst:{nlst}"], catalog_url=sqlite_url,
                          extra=extra)
    with running(mirror.popen("daemon")) as proc:
        both = lambda: {**simulator.ground_truth(), **second_simulator.ground_truth()}  # noqa: E731
        wait_for("both hosts mirrored", lambda: archive_converged(mirror.root, both()))
        victim = sorted(second_simulator.ground_truth())[0]
        second_simulator.publish_release(date.today(), silent_series=(victim,))
        wait_for("silent revision repaired",
                 lambda: archive_converged(mirror.root, both()))
        rows = {r["collection"]: r for r in json.loads(
            mirror.run("status", "--json", check=True).stdout)}
        assert rows[nlst]["source"] == "nlst" and rows[first]["source"] is None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    assert second_simulator.stats()["series"].get(victim, 0) >= 2  # first copy + repair
    assert_archive_matches(mirror.root, both())
