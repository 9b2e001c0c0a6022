"""B6: the catalog at NLST scale on Postgres: status and the queue paths vs instance rows.

    python3 benchmarks/catalog_scale.py [--instances 100000,2000000] [--series 200000]

Starts its own Postgres in a temporary directory (the system's initdb/pg_ctl, as the
tests do), migrates a catalog, then per size fills it server-side with
``generate_series`` (collections, patients, studies, DONE series with their local
totals, and N instance rows), ANALYZEs, and times through the Catalog API: status
(``collection_status``), the idle sync checks (``pending``, ``next_due``) and a claim
+ complete cycle of 8 series x 105 instances. Prints the EXPLAIN of the status query
and of the completion's instance DELETE, so the plans can be checked for scans of
``instances``. Medians of 5; times in ms, wall (one client, no other load of ours).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mirror.catalog import Catalog  # noqa: E402
from mirror.domain import InstanceRecord  # noqa: E402
from tests import fixtures_pg  # noqa: E402

FILL = """
INSERT INTO collections (id, name, created_at) VALUES (1, 'NLST-SIM', now());
INSERT INTO patients (id, collection_id, patient_id)
  SELECT g, 1, 'P' || g FROM generate_series(1, {patients}) g;
INSERT INTO studies (id, patient_ref, study_uid)
  SELECT g, 1 + (g - 1) / 3, '1.2.2.' || g FROM generate_series(1, {studies}) g;
INSERT INTO series (id, series_uid, collection_id, study_ref, modality, image_count, file_size,
                    discovered_at, state, attempts, repair, needs_refetch, local_path,
                    local_bytes, local_instance_count, verified_at)
  SELECT g, '1.2.3.' || g, 1, 1 + (g - 1) / 3, 'CT', {per}, {per} * 500000, now(), 'done', 1,
         false, false, 'NLST/' || g, {per} * 500000, {per}, now()
  FROM generate_series(1, {series}) g;
INSERT INTO instances (series_ref, sop_uid, path, size, md5)
  SELECT 1 + (g - 1) / {per}, '1.2.4.' || g, 'NLST/x/1.2.4.' || g || '.dcm', 500000,
         md5(g::text)
  FROM generate_series(1, {instances}) g;
SELECT setval(pg_get_serial_sequence('instances', 'id'), {instances});
ANALYZE;
"""


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


async def _timed(make, runs: int = 5) -> float:  # type: ignore[no-untyped-def]
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        await make()
        samples.append(time.perf_counter() - start)
    return _median_ms(samples)


async def measure(url: str, series: int) -> dict[str, float]:
    catalog = await Catalog.open(url)
    try:
        out = {"status": await _timed(catalog.collection_status),
               "pending": await _timed(lambda: catalog.pending(["NLST-SIM"])),
               "next_due": await _timed(lambda: catalog.next_due(["NLST-SIM"]))}
        cycles = []
        for k in range(5):
            uids = [f"1.2.3.{series - 8 * k - j}" for j in range(8)]
            await catalog.requeue(uids, reason="verify")
            start = time.perf_counter()
            claimed = await catalog.claim("bench", 8, lease_seconds=60,
                                          collections=["NLST-SIM"])
            await asyncio.gather(*(catalog.complete(
                c.series_uid, "bench", local_path="x", instances=[
                    InstanceRecord(f"{c.series_uid}.{i}", f"x/{i}.dcm", 500000, "0" * 32)
                    for i in range(105)]) for c in claimed))
            cycles.append((time.perf_counter() - start) / max(len(claimed), 1))
        out["claim+complete per series"] = _median_ms(cycles)
        return out
    finally:
        await catalog.close()


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--instances", default="100000,2000000")
    p.add_argument("--series", type=int, default=200_000)
    args = p.parse_args()
    bindir = fixtures_pg.find_bindir()
    if bindir is None:
        sys.exit("no Postgres binaries found")
    workdir = Path(tempfile.mkdtemp(prefix="tcia-mirror-b6-"))
    prefix = fixtures_pg._as_postgres_user(workdir)
    server = fixtures_pg._start(bindir, workdir, prefix)
    try:
        for n in [int(x) for x in args.instances.split(",")]:
            db = server.create_database()
            url = server.url(db)
            asyncio.run(_migrate(url))
            per = max(n // args.series, 1)
            series = min(args.series, n)
            start = time.perf_counter()
            _psql_db(server, db, FILL.format(patients=series // 8 + 1, studies=series // 3 + 1,
                                             series=series, per=per, instances=n))
            fill = time.perf_counter() - start
            got = asyncio.run(measure(url, series))
            print(f"\n## {n:,} instance rows, {series:,} series (filled in {fill:.0f} s)")
            for key, ms in got.items():
                print(f"- {key}: {ms:.1f} ms")
            for label, sql in (("status", STATUS_SQL), ("completion DELETE", DELETE_SQL)):
                plan = _psql_db(server, db, f"EXPLAIN {sql}")
                print(f"\nEXPLAIN {label}:\n```\n{plan}\n```")
            server.drop_database(db)
    finally:
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(workdir / "data"), "-m",
                        "fast", "-w", "stop"], capture_output=True, timeout=60, check=False)
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


STATUS_SQL = ("SELECT c.name, s.state, count(s.id), sum(s.local_bytes), "
              "sum(s.local_instance_count) FROM collections c LEFT OUTER JOIN series s "
              "ON s.collection_id = c.id GROUP BY c.id, s.state ORDER BY c.name")
DELETE_SQL = "DELETE FROM instances WHERE series_ref = ANY(ARRAY[1, 2, 3]::bigint[])"


async def _migrate(url: str) -> None:
    await (await Catalog.open(url)).close()


def _psql_db(server: fixtures_pg.PostgresServer, db: str, sql: str) -> str:
    result = subprocess.run(
        [str(server.bindir / "psql"), "-h", server.host, "-p", str(server.port), "-U",
         server.user, "-d", db, "-v", "ON_ERROR_STOP=1", "-qAtc", sql],
        capture_output=True, text=True, timeout=3600, check=True)
    return result.stdout.strip()


if __name__ == "__main__":
    sys.exit(main())
