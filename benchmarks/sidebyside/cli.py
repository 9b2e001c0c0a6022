"""Command line of benchmarks/run.py: pick sizes and suites, run them, print the tables."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from sidebyside import contenders, datasets, report, suites
from sidebyside.contenders import REPO
from sidebyside.measure import ContenderFailed

DEFAULT_WORK = REPO / "benchmarks" / ".work"
NEEDED_GB = {"b1": 4, "b2": 4, "b3": 1, "b4": 2, "b5": 1}  # dataset + ZIP caches + one output


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="benchmarks/run.py", description=(
        "tcia-mirror vs tcia-utils vs nbiatoolkit vs a raw-download floor, against the "
        "offline simulator"))
    p.add_argument("--quick", action="store_true",
                   help="tiny datasets and 1 run (the smoke test's setting)")
    p.add_argument("--runs", type=int, help="runs per contender (default 3, --quick 1)")
    p.add_argument("--only", default="b1,b2,b3,b4",
                   help="comma-separated subset of b1-b5 (b5, NLST-sized discovery, "
                        "runs only when named)")
    p.add_argument("--work", type=Path, default=DEFAULT_WORK,
                   help="datasets, catalogs and run folders (default benchmarks/.work)")
    p.add_argument("--json", type=Path, help="also write every sample to this file")
    p.add_argument("--no-nbiatoolkit", action="store_true",
                   help="leave nbiatoolkit out (otherwise its venv is made on first use, "
                        f"from PyPI, under {contenders.NBTK_VENV.parent})")
    args = p.parse_args(argv)
    args.runs = args.runs or (1 if args.quick else 3)
    args.only = [k.strip() for k in args.only.split(",") if k.strip()]
    if bad := [k for k in args.only if k not in suites.SUITES]:
        p.error(f"--only: unknown benchmark(s) {', '.join(bad)}")
    if args.runs < 1:
        p.error("--runs must be at least 1")
    return args


def machine() -> str:
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{os.cpu_count()} cores ({platform.processor() or platform.machine()}), "
            f"{mem:.1f} GiB RAM, Python {platform.python_version()}, {platform.system()} "
            f"{platform.release()}")


def check_disk(work: Path, keys: list[str], quick: bool) -> None:
    if quick:
        return
    need = sum(NEEDED_GB[k] for k in keys)
    free = shutil.disk_usage(work).free / 2**30
    if free < need:
        sys.exit(f"benchmarks: {free:.1f} GiB free under {work}, need about {need} GiB")


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    work = args.work / ("quick" if args.quick else "full")
    check_disk(args.work, args.only, args.quick)
    sets = datasets.QUICK if args.quick else datasets.FULL
    if args.no_nbiatoolkit:
        contenders.SKIPPED[contenders.NBTK] = "left out with --no-nbiatoolkit"
    contenders.compile_mirror()
    results = {}
    try:
        for key in args.only:
            results[key] = suites.SUITES[key](work, sets, args.runs)
    except ContenderFailed as exc:
        print(f"benchmarks: a contender failed: {exc}", file=sys.stderr)
        return 1
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"## tcia-mirror side-by-side benchmarks, {started}\n\nmachine: {machine()}\n"
          f"command: python3 benchmarks/run.py {' '.join(argv or sys.argv[1:])}\n")
    print(report.render(results))
    if args.json:
        args.json.write_text(json.dumps(
            {k: {"about": o.about, "totals": asdict(o.totals), "samples": {
                n: [asdict(s) | {"stdout": ""} for s in ss] for n, ss in o.samples.items()}}
             for k, o in results.items()}, indent=1, default=str))
    return 0
