"""``tcia-mirror status`` and ``tcia-mirror db upgrade``: the functions and the real CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import anyio.to_thread
import pytest

from mirror.catalog import Catalog, NotInitialised, status
from mirror.domain import InstanceRecord
from tests.catalog.factory import remote

KEYS = {"collection", "series_total", "done", "queued", "fetching", "failed", "retired",
        "bytes_on_disk", "instances", "last_poll", "last_poll_ok", "watermark",
        "last_reconcile", "last_poll_error"}
STORAGE_KEYS = {"storage", "storage_waiting", "storage_error"}  # tests/hostile/test_enospc.py
#: where a collection comes from and its MD5-hierarchy check (None until one ran)
HASH_KEYS = {"source", "last_hash_check", "last_hash_check_changed", "hash_scrub_started",
             "hash_scrub_changed"}
POLLED = datetime(2024, 6, 1, 8, 30, tzinfo=UTC)


async def _populate(catalog: Catalog) -> None:
    """COLL-A: 6 series (2 done, 1 failed, 1 fetching, 1 retired, 1 queued); COLL-B empty."""
    await catalog.ensure_collections(["COLL-B"])
    await catalog.upsert_series([remote(i) for i in range(6)])
    done1, done2, failed, _fetching = await catalog.claim("w", 4, lease_seconds=60)
    files = [InstanceRecord(f"1.4.{k}", f"f{k}", 1000, "0" * 32) for k in range(3)]
    await catalog.complete(done1.series_uid, "w", local_path="a", instances=files)
    await catalog.complete(done2.series_uid, "w", local_path="b", instances=files[:1])
    await catalog.fail(failed.series_uid, "w", error="400", retry_at=None)
    await catalog.retire([remote(5).series_uid])
    await catalog.record_poll("COLL-A", at=POLLED, ok=True, watermark=date(2024, 5, 31),
                              reconciled=True)


async def test_collect_counts_per_collection(catalog: Catalog, catalog_url: str) -> None:
    await _populate(catalog)
    rows = await anyio.to_thread.run_sync(status.read_collections, catalog_url)
    assert [r["collection"] for r in rows] == ["COLL-A", "COLL-B"]
    a, b = rows
    assert set(a) == KEYS | STORAGE_KEYS | HASH_KEYS
    assert {k: a[k] for k in HASH_KEYS} == dict.fromkeys(HASH_KEYS)
    assert {k: a[k] for k in KEYS - {"collection"}} == {
        "series_total": 5, "done": 2, "queued": 1, "fetching": 1, "failed": 1, "retired": 1,
        "bytes_on_disk": 4000, "instances": 4, "last_poll": POLLED.isoformat(),
        "last_poll_ok": True, "watermark": "2024-05-31", "last_reconcile": POLLED.isoformat(),
        "last_poll_error": None}
    assert (b["series_total"], b["last_poll"], b["watermark"]) == (0, None, None)
    assert json.loads(status.render(rows, as_json=True)) == rows
    table = status.render(rows, as_json=False)
    assert "COLL-A" in table and "3.9 KiB" in table and "2024-06-01 08:30 UTC" in table
    assert "never" in table.splitlines()[-1]  # COLL-B was never polled


async def test_collect_refuses_an_uninitialised_catalog(catalog_url: str) -> None:
    with pytest.raises(NotInitialised, match="tcia-mirror db upgrade"):
        await anyio.to_thread.run_sync(status.read_collections, catalog_url)


def test_render_without_collections_and_byte_units() -> None:
    assert "no collections" in status.render([], as_json=False)
    assert status.render([], as_json=True) == "[]"
    assert [status.human_bytes(n) for n in (0, 1023, 1536, 5 * 1024**4, 3 * 1024**5)] == [
        "0 B", "1023 B", "1.5 KiB", "5.0 TiB", "3072.0 TiB"]


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mirror", *args, "--config", str(tmp_path / "mirror.toml")],
        capture_output=True, text=True, timeout=60, cwd=tmp_path, check=False)


async def test_cli_db_upgrade_then_status_json(catalog_url: str, tmp_path: Path) -> None:
    (tmp_path / "mirror.toml").write_text(f'[catalog]\nurl = "{catalog_url}"\n')
    before = _cli(tmp_path, "status", "--json")
    assert before.returncode == 1
    assert "not initialised" in before.stderr and "db upgrade" in before.stderr
    upgraded = _cli(tmp_path, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    catalog = await Catalog.open(catalog_url, upgrade=False)
    try:
        await _populate(catalog)
    finally:
        await catalog.close()
    shown = _cli(tmp_path, "status", "--json")
    assert shown.returncode == 0, shown.stderr
    rows = json.loads(shown.stdout)
    assert [(r["collection"], r["done"], r["series_total"]) for r in rows] == [
        ("COLL-A", 2, 5), ("COLL-B", 0, 0)]


async def test_series_waiting_for_disk_space_show_as_storage_full(
        catalog: Catalog, catalog_url: str) -> None:
    """Errors recorded with queued or failed series; the same query on both backends."""
    await catalog.upsert_series([remote(i) for i in range(3)])
    full, quota, other = await catalog.claim("w", 3, lease_seconds=60)
    await catalog.fail(full.series_uid, "w", retry_at=datetime.now(UTC),
                       error="StorageFull: storage full: cannot write x: [Errno 28] ...")
    await catalog.fail(quota.series_uid, "w", retry_at=None,
                       error="StorageError: cannot write y: Disk quota exceeded")
    await catalog.fail(other.series_uid, "w", retry_at=None, error="StorageError: 100%_ ok")
    rows = await anyio.to_thread.run_sync(status.read_collections, catalog_url)
    (a,) = [r for r in rows if r["collection"] == "COLL-A"]
    assert (a["storage"], a["storage_waiting"]) == ("full", 2)
    assert "storage full" in a["storage_error"] or "quota" in a["storage_error"]
    assert "storage: full (COLL-A: 2 series waiting" in status.render(rows, as_json=False)
