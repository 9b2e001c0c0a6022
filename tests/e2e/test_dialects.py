"""The other dialects end to end (v3, nbia-v1), the text dry-run, and authenticated sources.

Secrets go in the config file and must never come back on stdout or stderr.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from mirror.catalog import Catalog
from mirror.catalog.status import human_bytes
from mirror.simulator.testing import SimulatorHandle, start_simulator
from tests.e2e.harness import assert_archive_matches, image_downloads, write_mirror

pytestmark = pytest.mark.slow

API_KEY = "v3-key-Zq8YwP1c7RkX"
USER, PASSWORD = "alice", "pw-Hk4s9Lq2Vx7N"


def recorded_md5s(catalog_url: str, series_uids: list[str]) -> dict[str, str]:
    """SOP UID -> MD5 the catalog recorded, for *series_uids*."""
    async def read() -> dict[str, str]:
        catalog = await Catalog.open(catalog_url, upgrade=False)
        try:
            return {i.sop_uid: i.md5 for uid in series_uids
                    for i in await catalog.instances(uid)}
        finally:
            await catalog.close()

    return asyncio.run(read())


@pytest.mark.parametrize(("api", "verify"), [("v3", "count"), ("nbia-v1", "md5")])
def test_fresh_sync_and_noop_resync(tmp_path: Path, simulator: Any, catalog_url: str,
                                    api: str, verify: str) -> None:
    mirror = write_mirror(tmp_path, base_url=simulator.base_url(api), api=api,
                          collections=simulator.collections(), catalog_url=catalog_url,
                          verify=verify)
    truth = simulator.ground_truth()
    summary = mirror.sync()
    assert summary["outcome"] == "ok" and summary["done"] == len(truth)
    assert_archive_matches(mirror.root, truth)
    stats = simulator.stats()
    zip_endpoint = "getImage" if verify == "count" else "getImageWithMD5Hash"
    assert image_downloads(stats, zip_endpoint) == len(truth), stats["requests"]
    # v3 has no MD5 source, but the MD5 of every stored file is still recorded
    want = {sop: inst.md5 for s in truth.values() for sop, inst in s.instances.items()}
    assert recorded_md5s(catalog_url, list(truth)) == want

    simulator.reset_stats()
    again = mirror.sync()
    stats = simulator.stats()
    assert again["done"] == 0 and again["bytes"] == 0
    assert image_downloads(stats, "getImage", "getImageWithMD5Hash", "getSingleImage") == 0
    assert stats["requests_total"] <= 3 * len(simulator.collections()), stats["requests"]
    assert_archive_matches(mirror.root, truth)


def test_dry_run_names_adds_refetches_and_bytes(tmp_path: Path, simulator: Any,
                                                catalog_url: str) -> None:
    mirror = write_mirror(tmp_path, base_url=simulator.base_url("nbia-v4"), api="nbia-v4",
                          collections=simulator.collections(), catalog_url=catalog_url,
                          extra="max_delete_fraction = 0.5")
    truth = simulator.ground_truth()
    (name,) = simulator.collections()
    total = sum(s.file_size for s in truth.values())

    plan = mirror.run("sync", "--dry-run", check=True).stdout
    assert f"{name}: add {len(truth)}, re-fetch 0, repair 0, retire 0" in plan, plan
    assert f"{human_bytes(total)} to fetch" in plan, plan
    assert not mirror.root.exists() or not any(mirror.root.rglob("*.dcm"))
    assert image_downloads(simulator.stats(), "getImage", "getImageWithMD5Hash") == 0

    mirror.sync()
    release = simulator.publish_release(date.today(), new_series=1, revised=1)
    simulator.reset_stats()
    plan = mirror.run("sync", "--dry-run", check=True).stdout
    new = simulator.ground_truth()
    # bytes: the new series plus (at most) the whole revised one
    bytes_planned = sum(new[uid].file_size
                        for uid in (*release.new_series_uids, *release.revised_series_uids))
    assert f"{name}: add 1, re-fetch 0, repair 1, retire 0" in plan, plan
    assert f"{human_bytes(bytes_planned)} to fetch" in plan, plan
    assert image_downloads(simulator.stats(), "getImage", "getImageWithMD5Hash") == 0
    assert mirror.sync()["done"] == 2  # the dry run changed nothing: both still to do
    assert_archive_matches(mirror.root, new)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """Auth concerns the source only: these tests run on SQLite alone, to save time."""
    return f"sqlite+aiosqlite:///{tmp_path / 'catalog.db'}"


@pytest.fixture
def v3_with_key(sim_data_dir: Path) -> Iterator[SimulatorHandle]:
    with start_simulator(sim_data_dir, api_key=API_KEY) as handle:
        yield handle


@pytest.fixture
def nbia_with_users(sim_data_dir: Path) -> Iterator[SimulatorHandle]:
    with start_simulator(sim_data_dir, auth=True, users={USER: PASSWORD}) as handle:
        yield handle


def assert_no_secret(proc_or_text: Any, *secrets: str) -> None:
    text = proc_or_text if isinstance(proc_or_text, str) else (
        proc_or_text.stdout + proc_or_text.stderr)
    for secret in secrets:
        assert secret not in text, f"secret {secret[:3]}... printed"


def test_v3_api_key(tmp_path: Path, v3_with_key: SimulatorHandle, sqlite_url: str) -> None:
    sim = v3_with_key
    mirror = write_mirror(tmp_path, base_url=sim.base_url("v3"), api="v3",
                          collections=sim.collections(), catalog_url=sqlite_url,
                          verify="count")
    text = mirror.config.read_text().replace('[archive]', f'api_key = "{API_KEY}"\n\n[archive]')
    mirror.config.write_text(text)
    for args in (("sync", "--json"), ("sync",)):
        proc = mirror.run(*args, check=True)
        assert_no_secret(proc, API_KEY)
    assert_archive_matches(mirror.root, sim.ground_truth())
    assert sim.stats()["statuses"].get("401") is None

    mirror.config.write_text(text.replace(API_KEY, API_KEY[::-1]))
    refused = mirror.run("sync")
    assert refused.returncode == 3, refused.stderr[-2000:]
    assert_no_secret(refused, API_KEY, API_KEY[::-1])


def test_nbia_token_auth(tmp_path: Path, nbia_with_users: SimulatorHandle,
                         sqlite_url: str) -> None:
    sim = nbia_with_users
    mirror = write_mirror(tmp_path, base_url=sim.base_url("nbia-v4"), api="nbia-v4",
                          collections=sim.collections(), catalog_url=sqlite_url)
    text = mirror.config.read_text().replace(
        '[archive]', f'username = "{USER}"\npassword = "{PASSWORD}"\n\n[archive]')
    mirror.config.write_text(text)
    outputs = [mirror.run(*args, check=True) for args in (("sync", "--json"), ("sync",))]
    assert_archive_matches(mirror.root, sim.ground_truth())
    stats = sim.stats()
    assert stats["requests"].get("token:oauth/token", 0) >= 1
    assert stats["statuses"].get("401") is None
    # the tokens the server issued are secrets too (private state: only the test knows it)
    tokens = [t for store in (sim.sim.tokens._access, sim.sim.tokens._refresh) for t in store]
    assert tokens
    for proc in outputs:
        assert_no_secret(proc, PASSWORD, *tokens, *(t.rsplit(".", 1)[-1] for t in tokens))

    mirror.config.write_text(text.replace(PASSWORD, "wrong-" + PASSWORD))
    refused = mirror.run("sync", "--reconcile")
    assert refused.returncode == 3, refused.stdout + refused.stderr[-2000:]
    assert_no_secret(refused, PASSWORD, "wrong-" + PASSWORD)
