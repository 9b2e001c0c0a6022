"""B6: the catalog at NLST scale on Postgres: status, the status page and the queue vs size.

    python3 benchmarks/catalog_scale.py [--instances 100000,21000000] [--series 200000]
    python3 benchmarks/catalog_scale.py --instances 100000 --compare /tmp/old-checkout

Starts its own Postgres in a temporary directory (the system's initdb/pg_ctl, as the
tests do), migrates a catalog, then per size fills it server-side with
``generate_series``: one collection, patients (8 series each), studies (3 series
each), series (each with a ~750-byte listing record; 98% DONE with their local
totals, 1% FAILED with an error, 1% QUEUED and due in the future; commit times
``verified_at`` 90 s apart back from now, so a day of commits falls in the status
page's 24-hour window) and N instance rows. The
instance table is loaded without its primary key and unique constraint, which are
then built in one pass each (as CREATE INDEX does, instead of 21 million index
insertions); foreign-key checks are skipped for the load and the key validated after.

Times, through the Catalog API (the statements the program runs): ``status``
(:func:`collection_rows`), ``status --failed`` and the status page data
(:func:`overview`, limits 1000 and 200), the throughput chart alone
(``committed_per_hour``), the idle sync checks (``pending``, ``next_due``), a claim +
complete cycle of 8 series x 105 instances, and the real CLI ``tcia-mirror status``
(a new process: interpreter start-up and imports included; wall and CPU, the CPU
figure being the steadier one on a shared machine). Then EXPLAIN (ANALYZE,
BUFFERS) of every statement those calls ran, captured from the engine as executed
(writes inside a rolled-back transaction), so the plans can be checked for scans of
``instances`` and ``series``. Medians of 5 (CLI: of 5 processes); ms, wall.

``--compare TREE`` also runs the CLI from another source tree (e.g. a detached
worktree of the commit before a change), its processes alternated with this tree's,
and checks that both print the same thing.
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sqlalchemy import event  # noqa: E402

from mirror.catalog import Catalog  # noqa: E402
from mirror.catalog.status import collection_rows, overview  # noqa: E402
from mirror.domain import InstanceRecord  # noqa: E402
from tests import fixtures_pg  # noqa: E402

COLLECTION = "NLST-SIM"
FILL = """
SET session_replication_role = replica;  -- no per-row foreign-key triggers while loading
SET maintenance_work_mem = '1GB';
INSERT INTO collections (id, name, created_at, last_poll_at, last_poll_ok)
  VALUES (1, '{name}', now(), now(), true);
INSERT INTO patients (id, collection_id, patient_id)
  SELECT g, 1, 'NLST-' || (100000 + g) FROM generate_series(1, {patients}) g;
INSERT INTO studies (id, patient_ref, study_uid)
  SELECT g, 1 + (g - 1) * 3 / 8, '1.3.6.1.4.1.14519.5.2.1.7009.9004.2.' || g
  FROM generate_series(1, {studies}) g;
INSERT INTO series (id, series_uid, collection_id, study_ref, modality, image_count, file_size,
                    discovered_at, state, attempts, next_attempt_at, queue_reason, last_error,
                    repair, needs_refetch, local_path, local_bytes, local_instance_count,
                    verified_at, description, series_number, raw)
  SELECT g, '1.2.3.' || g, 1, 1 + (g - 1) / 3, 'CT', {per}, {per} * 500000,
         now() - interval '300 days',
         CASE g % 100 WHEN 7 THEN 'failed' WHEN 3 THEN 'queued' ELSE 'done' END,
         CASE g % 100 WHEN 7 THEN 5 ELSE 1 END,
         CASE g % 100 WHEN 3 THEN now() + (g % 1000) * interval '1 minute' END,
         CASE g % 100 WHEN 3 THEN 'changed' WHEN 7 THEN 'changed' ELSE 'new' END,
         CASE g % 100 WHEN 7 THEN 'HTTP 500 from getImage after 5 attempts' END,
         false, false, 'NLST/' || g, {per} * (500000 + g % 1000), {per},
         now() - ({series} - g) * interval '90 seconds', '0,OPA,GE,HSCT,2.5mm', g % 9,
         json_build_object(  -- a v4 getSeries record as discovery stores it (~750 bytes)
           'SeriesInstanceUID', '1.2.3.' || g, 'Modality', 'CT', 'Collection', '{name}',
           'StudyInstanceUID', '1.3.6.1.4.1.14519.5.2.1.7009.9004.2.' || (1 + (g - 1) / 3),
           'PatientID', 'NLST-' || (100001 + (g - 1) / 8), 'ProtocolName', 'LUNG SCREEN',
           'SeriesDescription', '0,OPA,GE,HSCT,2.5mm', 'BodyPartExamined', 'CHEST',
           'SeriesNumber', g % 9, 'Manufacturer', 'GE MEDICAL SYSTEMS',
           'ManufacturerModelName', 'LightSpeed QX/i', 'SoftwareVersions', 'LightSpeedApps2.4',
           'ImageCount', {per}, 'FileSize', {per} * 500000, 'TimeStamp', '2009-10-05 12:00:00.0',
           'DateReleased', '2010-06-11 00:00:00.0', 'StudyDate', '01-02-1999',
           'StudyDesc', 'NLST-LSS', 'CollectionURI', 'https://doi.org/10.7937/TCIA.hmq8-j677',
           'LicenseName', 'CC BY 4.0', 'LicenseURI', 'https://creativecommons.org/licenses/by/4.0/',
           'ThirdPartyAnalysis', 'NO', 'SeriesDate', '01-02-1999', 'SeriesTime', '120000')
  FROM generate_series(1, {series}) g;
ALTER TABLE instances DROP CONSTRAINT uq_instances_series_ref_sop_uid;
ALTER TABLE instances DROP CONSTRAINT pk_instances;
INSERT INTO instances (id, series_ref, sop_uid, path, size, md5)
  SELECT g, 1 + (g - 1) / {per}, '1.3.6.1.4.1.14519.5.2.1.7009.9004.4.' || g,
         'NLST/' || (1 + (g - 1) / {per}) || '/' || g || '.dcm',
         500000 + (1 + (g - 1) / {per}) % 1000, md5(g::text)
  FROM generate_series(1, {instances}) g;
ALTER TABLE instances ADD CONSTRAINT pk_instances PRIMARY KEY (id);
ALTER TABLE instances ADD CONSTRAINT uq_instances_series_ref_sop_uid UNIQUE (series_ref, sop_uid);
SET session_replication_role = origin;
ALTER TABLE instances DROP CONSTRAINT fk_instances_series_ref_series;
ALTER TABLE instances ADD CONSTRAINT fk_instances_series_ref_series FOREIGN KEY (series_ref)
  REFERENCES series (id) ON DELETE CASCADE;
SELECT setval(pg_get_serial_sequence('patients', 'id'), {patients});
SELECT setval(pg_get_serial_sequence('studies', 'id'), {studies});
SELECT setval(pg_get_serial_sequence('series', 'id'), {series});
SELECT setval(pg_get_serial_sequence('instances', 'id'), {instances});
VACUUM ANALYZE;
"""


async def _timed(make: Any, runs: int = 5) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        await make()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


class Recorder:
    """The statements a catalog's engine executes while ``capture`` is set, with params."""

    def __init__(self, catalog: Catalog) -> None:
        self.capture: str | None = None
        self.seen: dict[tuple[str, str], Any] = {}
        event.listen(catalog._engine.sync_engine, "before_cursor_execute", self._hook)

    def _hook(self, conn: Any, cursor: Any, statement: str, params: Any, context: Any,
              executemany: bool) -> None:
        if self.capture and not executemany:
            self.seen.setdefault((self.capture, statement), params)


async def measure(url: str, series: int) -> tuple[dict[str, float], Recorder]:
    catalog = await Catalog.open(url)
    rec = Recorder(catalog)
    scope = [COLLECTION]
    calls = {
        "status": lambda: collection_rows(catalog),
        "status --failed (overview)": lambda: overview(catalog, failed_limit=1000),
        "status page data (overview)": lambda: overview(catalog, failed_limit=200),
        "throughput chart alone": lambda: catalog.committed_per_hour(_since()),
        "pending": lambda: catalog.pending(scope),
        "next_due": lambda: catalog.next_due(scope),
    }
    try:
        out = {}
        for name, make in calls.items():
            rec.capture = name
            await make()
            rec.capture = None
            out[name] = await _timed(make)
        cycles = []
        for k in range(5):
            uids = [f"1.2.3.{series - 8 * k - j}" for j in range(8)]
            await catalog.requeue(uids, reason="verify")
            rec.capture = "claim + complete" if k == 0 else None
            start = time.perf_counter()
            claimed = await catalog.claim("bench", 8, lease_seconds=60, collections=scope)
            await asyncio.gather(*(catalog.complete(
                c.series_uid, "bench", local_path="x", instances=[
                    InstanceRecord(f"{c.series_uid}.{i}", f"x/{i}.dcm", 500000, "0" * 32)
                    for i in range(105)]) for c in claimed))
            cycles.append((time.perf_counter() - start) / max(len(claimed), 1))
            rec.capture = None
            assert len(claimed) == 8, f"claimed {len(claimed)} of 8"
        out["claim + complete, per series"] = statistics.median(cycles) * 1000
        return out, rec
    finally:
        await catalog.close()


def _since() -> Any:
    from datetime import UTC, datetime, timedelta
    now = datetime.now(UTC)
    return now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=23)


async def explain(url: str, rec: Recorder) -> list[str]:
    """EXPLAIN (ANALYZE, BUFFERS) of each captured statement, in a rolled-back transaction."""
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    out = []
    try:
        for (call, statement), params in rec.seen.items():
            if statement.lstrip().upper().startswith(("BEGIN", "COMMIT", "SELECT PG_ADVISORY",
                                                      "SELECT VERSION_NUM")):
                continue
            tx = conn.transaction()
            await tx.start()
            try:
                rows = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {statement}",
                                        *(params or ()))
            finally:
                await tx.rollback()
            plan = "\n".join(r[0] for r in rows)
            out.append(f"{call}:\n```\n{' '.join(statement.split())}\n\n{plan}\n```")
    finally:
        await conn.close()
    return out


def cli_status(url: str, workdir: Path, *args: str, runs: int = 5,
               trees: tuple[Path, ...] = (REPO,)) -> list[tuple[float, float]]:
    """Per tree: median wall ms and CPU ms (user + system) of `python -m mirror status ARGS`
    processes, the trees' runs alternated; every tree must print the same."""
    config = workdir / "b6.toml"
    config.write_text(f'[catalog]\nurl = "{url}"\n[archive]\nroot = "{workdir}/archive"\n')
    samples: list[list[float]] = [[] for _ in trees]
    cpu: list[list[float]] = [[] for _ in trees]
    printed: set[str] = set()
    for tree in trees:  # as installed: .pyc files exist
        compileall.compile_dir(tree / "mirror", quiet=1)
    for _ in range(runs + 1):  # the first run warms the page cache and is dropped
        for k, tree in enumerate(trees):
            env = {**os.environ, "PYTHONPATH": str(tree)}
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "mirror", "status", "--config",
                                   str(config), *args], capture_output=True, text=True,
                                  env=env, cwd=workdir, timeout=120, check=False)
            samples[k].append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu[k].append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
            if proc.returncode != 0:
                raise RuntimeError(f"status {args} ({tree}) failed: {proc.stderr[-2000:]}")
            printed.add(proc.stdout)
    if len(printed) != 1:
        raise RuntimeError(f"the trees print different things for status {args}")
    return [(statistics.median(w[1:]) * 1000, statistics.median(c[1:]) * 1000)
            for w, c in zip(samples, cpu, strict=True)]


def run_size(server: fixtures_pg.PostgresServer, workdir: Path, n: int,
             series_wanted: int, compare: Path | None = None) -> None:
    db = server.create_database()
    url = server.url(db)
    asyncio.run(_migrate(url))
    series = min(series_wanted, n)
    per = max(n // series, 1)
    start = time.perf_counter()
    _psql_db(server, db, FILL.format(name=COLLECTION, patients=series // 8 + 1,
                                     studies=series // 3 + 1, series=series, per=per,
                                     instances=n))
    fill = time.perf_counter() - start
    sizes = _psql_db(server, db, "SELECT pg_size_pretty(pg_database_size(current_database())), "
                     "pg_size_pretty(pg_total_relation_size('instances')), "
                     "pg_size_pretty(pg_total_relation_size('series'))")
    got, rec = asyncio.run(measure(url, series))
    trees = (REPO,) if compare is None else (REPO, compare)
    for args in ((), ("--json",), ("--failed",)):
        command = " ".join(("tcia-mirror status", *args))
        for tree, (wall, cpu) in zip(trees, cli_status(url, workdir, *args, trees=trees),
                                     strict=True):
            label = "" if tree == REPO else f" [{tree}]"
            got[f"CLI `{command}` (process){label}, wall"] = wall
            got[f"CLI `{command}` (process){label}, CPU"] = cpu
    db_size, inst_size, series_size = sizes.split("|")
    print(f"\n## {n:,} instance rows, {series:,} series, {per} per series "
          f"(filled in {fill:.0f} s; database {db_size}: instances {inst_size}, "
          f"series {series_size})\n")
    print("| path | ms (median of 5) |\n|---|---|")
    for key, ms in got.items():
        print(f"| {key} | {ms:.1f} |")
    print("\n### EXPLAIN (ANALYZE, BUFFERS) of the statements run\n")
    print("\n\n".join(asyncio.run(explain(url, rec))), flush=True)
    server.drop_database(db)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--instances", default="100000,2000000")
    p.add_argument("--series", type=int, default=200_000)
    p.add_argument("--compare", type=Path, default=None,
                   help="another source tree whose `status` processes run alternated")
    args = p.parse_args()
    bindir = fixtures_pg.find_bindir()
    if bindir is None:
        sys.exit("no Postgres binaries found")
    workdir = Path(tempfile.mkdtemp(prefix="tcia-mirror-b6-"))
    prefix = fixtures_pg._as_postgres_user(workdir)
    server = fixtures_pg._start(bindir, workdir, prefix)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # still stop the server
    try:
        for n in [int(x) for x in args.instances.split(",")]:
            run_size(server, workdir, n, args.series,
                     args.compare.resolve() if args.compare else None)
    finally:
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(workdir / "data"), "-m",
                        "fast", "-w", "stop"], capture_output=True, timeout=60, check=False)
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


async def _migrate(url: str) -> None:
    await (await Catalog.open(url)).close()


def _psql_db(server: fixtures_pg.PostgresServer, db: str, sql: str) -> str:
    result = subprocess.run(
        [str(server.bindir / "psql"), "-h", server.host, "-p", str(server.port), "-U",
         server.user, "-d", db, "-v", "ON_ERROR_STOP=1", "-qAt", "-f", "-"],
        input=sql, capture_output=True, text=True, timeout=7200, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"psql failed: {result.stderr.strip()[-2000:]}")
    return result.stdout.strip()


if __name__ == "__main__":
    sys.exit(main())
