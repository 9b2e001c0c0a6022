"""Hash pass cost: getMD5Hierarchy requests of one full pass, per number of patients.

    python benchmarks/hash_pass.py                  # N = 5 and 50 patients
    python benchmarks/hash_pass.py --patients 5 50 200 --changed 2

For each N: the simulator serves one collection of N patients (1 study, 2 series, 3
images each); the CLI mirrors it, then runs ``sync --reconcile`` twice: once with
nothing changed, once after *changed* series were revised silently. Prints the
getMD5Hierarchy requests and wall seconds of each pass, and how long a rolling scrub of
26,000 patients takes at ``hash_requests_per_second`` (default 2).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

from mirror.config.settings import SyncSettings
from mirror.simulator.testing import DatasetSpec, start_simulator

REPO = Path(__file__).resolve().parents[1]


def cli(config: Path, *args: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "mirror", *args, "--json", "--config",
                           str(config)], capture_output=True, text=True, env=env, check=True)
    return json.loads(proc.stdout)


def hash_requests(sim: Any) -> int:
    return sum(n for k, n in sim.stats()["requests"].items() if k.endswith(":getMD5Hierarchy"))


def measure(n: int, changed: int, work: Path) -> dict[str, Any]:
    with start_simulator(work / "sim-data", DatasetSpec(patients=n)) as sim:
        (collection,) = sim.collections()
        config = work / f"mirror-{n}.toml"
        config.write_text(f"""
[source]
api = "nbia-v4"
base_url = "{sim.base_url("nbia-v4")}"
[archive]
root = "{work / f"archive-{n}"}"
[catalog]
url = "sqlite+aiosqlite:///{work / f"catalog-{n}.db"}"
[sync]
collections = ["{collection}"]
hash_requests_per_second = 0
""")
        cli(config, "sync")
        out: dict[str, Any] = {"patients": n}
        for label in ("unchanged", f"{changed} changed"):
            if label != "unchanged":
                victims = sorted(sim.ground_truth())[:changed]
                sim.publish_release(date.today(), silent_series=tuple(victims))
            sim.reset_stats()
            started = time.perf_counter()
            summary = cli(config, "sync", "--reconcile")
            out[label] = {"requests": hash_requests(sim),
                          "found": summary["hash_check"][collection]["changed"],
                          "seconds": round(time.perf_counter() - started, 2)}
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, nargs="+", default=[5, 50])
    parser.add_argument("--changed", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.patients:
            print(json.dumps(measure(n, args.changed, Path(tmp))))
    rate = SyncSettings().hash_requests_per_second
    seconds = 26_000 / rate
    print(f"rolling scrub of 26,000 unchanged patients at {rate:g} requests/s: "
          f"{seconds:,.0f} s = {seconds / 3600:.1f} h of requests")


if __name__ == "__main__":
    main()
