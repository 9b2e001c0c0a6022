"""Exactness on NBIA v4, end to end through the CLI against the simulator.

v4 dates are day-only: revisions that keep ImageCount and FileSize show in no listing
and are found by the MD5-hierarchy check; a catalog filled through another dialect is
not re-checked because timestamps are compared at the granularity the dialect gives.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

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


def test_v1_filled_catalog_synced_through_v4_fetches_nothing(
        tmp_path: Path, simulator: Any, sqlite_url: str) -> None:
    mirror = write_mirror(tmp_path, base_url=simulator.base_url("nbia-v1"), api="nbia-v1",
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
