"""Catalog bulk benchmark: upsert N series (default 100,000), re-list them, query status.

    python benchmarks/catalog_bulk.py                       # SQLite in a temporary folder
    python benchmarks/catalog_bulk.py --url postgresql+asyncpg://user@host/emptydb

Prints seconds and rows/s per step. Use an empty database: the figures for "new"
series mean nothing on a catalog that already holds them.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from mirror.catalog import Catalog, status
from mirror.catalog.engine import safe_url
from mirror.domain import RemoteSeries

COLLECTION = "BENCH-NLST"


def listing(n: int, *, revision: int = 0) -> list[RemoteSeries]:
    """n series shaped like an NLST getSeries listing (3 series/study, 3 studies/patient)."""
    released = datetime(2020, 1, 1, tzinfo=UTC)
    out = []
    for i in range(n):
        uid = f"1.3.6.1.4.1.14519.5.2.1.7009.9004.{i}"
        raw = {
            "SeriesInstanceUID": uid, "StudyInstanceUID": f"1.3.6.1.4.1.14519.5.2.1.{i // 3}",
            "Modality": "CT", "ProtocolName": "LUNG SCREEN", "SeriesDate": "2001-01-02",
            "BodyPartExamined": "CHEST", "SeriesNumber": i % 7, "Collection": COLLECTION,
            "PatientID": f"1{i // 9:05d}", "Manufacturer": "GE MEDICAL SYSTEMS",
            "ManufacturerModelName": "LightSpeed QX/i", "ImageCount": 150 + i % 50,
            "TimeStamp": "2020-01-01 00:00:00.0", "LicenseName": "CC BY 4.0",
            "FileSize": 80_000_000 + i, "DateReleased": "2020-01-01 00:00:00.0",
        }
        out.append(RemoteSeries(
            series_uid=uid, study_uid=raw["StudyInstanceUID"], patient_id=raw["PatientID"],
            collection=COLLECTION, modality="CT", image_count=150 + i % 50 + revision,
            file_size=80_000_000 + i, timestamp=released + timedelta(days=revision),
            date_released=released, series_number=i % 7, description="LUNG SCREEN",
            raw=raw))
    return out


async def timed(label: str, rows: int, step: Callable[[], Awaitable[Any]]) -> Any:
    start = time.perf_counter()
    result = await step()
    seconds = time.perf_counter() - start
    rate = f"{rows / seconds:>10,.0f} rows/s" if rows else ""
    print(f"{label:<44} {seconds:8.2f} s {rate}", flush=True)
    return result


async def run(url: str, n: int, batch: int) -> None:
    print(f"catalog {safe_url(url)}, {n:,} series, upsert batches of {batch:,}")
    catalog = await timed("open + migrate", 0, lambda: Catalog.open(url))
    try:
        await bench(catalog, url, n, batch)
    finally:
        await catalog.close()


async def bench(catalog: Catalog, url: str, n: int, batch: int) -> None:
    first, changed = listing(n), listing(n, revision=1)

    async def upsert(records: list[RemoteSeries]) -> int:
        return sum([await catalog.upsert_series(records[i:i + batch])
                    for i in range(0, len(records), batch)])

    new = await timed(f"upsert {n:,} new series", n, lambda: upsert(first))
    assert new == n, f"expected {n} new series, got {new} (is the database empty?)"
    again = await timed(f"upsert {n:,} known series, unchanged", n, lambda: upsert(first))
    assert again == 0
    again = await timed(f"upsert {n:,} known series, all revised", n,
                        lambda: upsert(changed))
    assert again == 0
    rows = await timed("status query (tcia-mirror status)", n,
                       lambda: asyncio.to_thread(status.read_collections, url))
    assert sum(r["series_total"] for r in rows) == n
    snap = await timed("series_snapshot of the collection", n,
                       lambda: catalog.series_snapshot(COLLECTION))
    assert len(snap) == n
    claimed = await timed("claim 1,000 series (10 claims of 100)", 1000,
                          lambda: claim_many(catalog, 10, 100))
    assert claimed == 1000
    await timed("counts_by_state", n, catalog.counts_by_state)


async def claim_many(catalog: Catalog, times: int, limit: int) -> int:
    return sum([len(await catalog.claim("bench", limit, lease_seconds=60))
                for _ in range(times)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="catalog URL (default: a temporary SQLite file)")
    parser.add_argument("--series", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=5_000,
                        help="series per upsert_series call (the scheduler's batch)")
    args = parser.parse_args()
    if args.url:
        asyncio.run(run(args.url, args.series, args.batch))
        return
    with tempfile.TemporaryDirectory(prefix="catalog-bench-") as tmp:
        asyncio.run(run(f"sqlite+aiosqlite:///{Path(tmp) / 'catalog.db'}", args.series,
                        args.batch))


if __name__ == "__main__":
    main()
