"""Check for B5 work: two source trees record the same listing into the same catalog rows.

    python benchmarks/same_catalog.py OLD_TREE NEW_TREE [SERIES]

Serves a generated nbia-v4 getSeries listing (``sidebyside/bigcollection.py``) with rows
that take the careful paths mixed in (bad UIDs, NUL, lone surrogates, numbers out of
range, another collection, other types), runs ``sidebyside/discover_run.py`` of each
tree in its own process, and compares every catalog table row by row, except the
columns that hold the time of the run. Exit status 0 when they are the same.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "sidebyside"))
import bigcollection

#: Columns holding the time of the run (they differ between any two runs).
CLOCK = {"discovered_at", "next_attempt_at", "created_at", "last_poll_at",
         "last_reconcile_at", "watermark", "updated_at"}
C = bigcollection.COLLECTION
ODD_ROWS = [
    '{"SeriesInstanceUID":"1.2.9.1","StudyInstanceUID":"bad","PatientID":"P","Collection":"%s"}',
    '{"SeriesInstanceUID":"1.2.9.2","StudyInstanceUID":"1.2.9","PatientID":"a\\u0000b",'
    '"Collection":"%s","ImageCount":"12"}',
    '{"SeriesInstanceUID":"1.2.9.3","StudyInstanceUID":"1.2.9","PatientID":"\\ud800",'
    '"Collection":"%s","FileSize":-1}',
    '{"SeriesInstanceUID":"1.2.9.4","StudyInstanceUID":"1.2.9","PatientID":"P",'
    '"Collection":"OTHER"}',
    '{"SeriesInstanceUID":"1.2.9.5","StudyInstanceUID":"1.2.9","PatientID":7,'
    '"Collection":"%s","ImageCount":99999999999,"SeriesNumber":-3,"Modality":12,'
    '"SeriesDescription":"","DateReleased":"2010-03-15 00:00:00.0","Extra":{"a":[1,null]}}',
    '{"SeriesInstanceUID":"x/../y","StudyInstanceUID":"1.2.9","Collection":"%s"}',
    '{"SeriesInstanceUID":"1.2.9.6","Series UID":"1.2.9.7","Study UID":"1.2.9.8",'
    '"Subject ID":"S","Number of Images":4,"File Size":5,"Collection":"%s",'
    '"TimeStamp":"2011-01-02 03:04:05.5","Modality":"' + "M" * 80 + '"}',
    '{"SeriesInstanceUID":"1.2.9.9","StudyInstanceUID":"1.2.9","PatientID":"' + "p" * 300
    + '","Collection":"%s","FileSize":9223372036854775808}',
]


def body(path: Path, series: int) -> Path:
    plain = bigcollection.listing(path.with_name(f"plain-{series}.json"), series).read_text()
    odd = ",".join(row.replace("%s", C) for row in ODD_ROWS)
    path.write_text(plain[:-1] + "," + odd + "]")
    return path


def run(tree: Path, base: str, work: Path) -> Path:
    work.mkdir(parents=True)
    config = work / "tcia-mirror.toml"
    config.write_text(f'[source]\napi = "nbia-v4"\nbase_url = "{base}"\n\n[archive]\n'
                      f'root = "{work / "archive"}"\n\n[catalog]\n'
                      f'url = "sqlite+aiosqlite:///{work / "catalog.db"}"\n\n'
                      f'[sync]\ncollections = ["{C}"]\n')
    subprocess.run([sys.executable, str(tree / "benchmarks/sidebyside/discover_run.py"),
                    str(config), C], check=True, cwd=work,
                   env={**os.environ, "PYTHONPATH": str(tree)})
    return work / "catalog.db"


def dump(db: Path) -> dict[str, list[tuple[object, ...]]]:
    conn = sqlite3.connect(db)
    tables = [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
    out = {}
    for table in tables:
        columns = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")
                   if r[1] not in CLOCK]
        out[table] = conn.execute(f"SELECT {', '.join(columns)} FROM {table} "
                                  f"ORDER BY 1").fetchall()
    conn.close()
    return out


def main(old: Path, new: Path, series: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        listing = body(Path(tmp) / f"listing-{series}.json", series)
        with bigcollection.serve(listing) as base:
            before = dump(run(old, base, Path(tmp) / "old"))
            after = dump(run(new, base, Path(tmp) / "new"))
    differ = [t for t in before if before[t] != after.get(t)] + sorted(after.keys() - before)
    rows = sum(len(v) for v in before.values())
    print(f"{rows} rows in {len(before)} tables; tables that differ: {differ or 'none'}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2]),
                  int(sys.argv[3]) if len(sys.argv) > 3 else 20_000))
