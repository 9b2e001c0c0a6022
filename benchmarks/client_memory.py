"""Client memory while streaming one series several times larger than its memory budget.

Starts the offline simulator in a child process (so its memory is not counted), then
streams the same big series through ``TciaClient.download_image`` into a file several
times, sampling this process's RSS on every chunk. Flat memory = peak RSS barely above
the baseline, whatever the series size. Usage:

    python benchmarks/client_memory.py [--pixel-mb 800] [--runs 3] [--api nbia-v1]

The simulator's ZIP deflates its generated pixel data to about half, so the default
800 MiB of pixel data is a ~400 MiB download, against a 64 MiB memory budget.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import psutil

MIB = 1024 * 1024


def _serve(data_dir: str, instances: int, instance_size: int, conn: object) -> None:
    """Child process: run the simulator until the parent says stop."""
    from mirror.simulator.testing import DatasetSpec, start_simulator

    spec = DatasetSpec(seed=7, collections=1, patients=1, studies=1, series=1,
                       instances=instances, instance_size=instance_size)
    with start_simulator(Path(data_dir), spec) as sim:
        conn.send({api: sim.base_url(api) for api in ("v3", "nbia-v1", "nbia-v4")})  # type: ignore[attr-defined]
        conn.recv()  # type: ignore[attr-defined]


class Meter:
    """Samples RSS on every chunk (cheap: one /proc read)."""

    def __init__(self) -> None:
        self.proc = psutil.Process()
        self.peak = 0
        self.chunks = 0

    def __call__(self, nbytes: int) -> None:
        self.chunks += 1
        if self.chunks % 4 == 0:
            self.peak = max(self.peak, self.proc.memory_info().rss)


async def _bench(base_url: str, api: str, runs: int, out_dir: Path) -> list[dict[str, float]]:
    from mirror.config.settings import SourceSettings
    from mirror.tcia import TciaClient

    source = SourceSettings(api=api, base_url=base_url)
    rows = []
    async with TciaClient(source) as client:
        collection = (await client.get_collection_values())[0]
        series = max(await client.get_series(collection=collection),
                     key=lambda s: s.file_size or 0)
        for run in range(1, runs + 1):
            meter = Meter()
            before = meter.proc.memory_info().rss
            started = time.monotonic()
            target = out_dir / f"run{run}.zip"
            with target.open("wb") as sink:
                written = await client.download_image(series.series_uid, sink,
                                                      progress=meter)
            seconds = time.monotonic() - started
            meter.peak = max(meter.peak, meter.proc.memory_info().rss)
            target.unlink()
            rows.append({"run": run, "bytes": written, "seconds": seconds,
                         "rss_before": before, "rss_peak": meter.peak,
                         "chunks": meter.chunks})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pixel-mb", type=int, default=800,
                        help="pixel data generated for the series (the ZIP is ~half)")
    parser.add_argument("--instance-mb", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--api", default="nbia-v1", choices=["v3", "nbia-v1", "nbia-v4"])
    parser.add_argument("--budget-mb", type=int, default=64,
                        help="allowed RSS growth while streaming")
    args = parser.parse_args()
    instances = max(1, args.pixel_mb // args.instance_mb)

    with tempfile.TemporaryDirectory(prefix="client-memory-") as tmp:
        parent, child = mp.Pipe()
        ctx = mp.get_context("spawn")
        server = ctx.Process(target=_serve, daemon=True,
                             args=(os.path.join(tmp, "sim"), instances,
                                   args.instance_mb * MIB, child))
        server.start()
        print(f"generating a {instances} x {args.instance_mb} MiB series in the simulator...",
              file=sys.stderr)
        urls = parent.recv()
        try:
            out_dir = Path(tmp, "out")
            out_dir.mkdir()
            rows = asyncio.run(_bench(urls[args.api], args.api, args.runs, out_dir))
        finally:
            parent.send("stop")
            server.join(timeout=30)
    return 0 if _report(rows, args.api, args.budget_mb) else 1


def _report(rows: list[dict[str, float]], api: str, budget_mb: int) -> bool:
    max_rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(f"client memory while streaming getImage ({api}), chunk 256 KiB")
    print(f"{'run':>3} {'series MiB':>10} {'seconds':>8} {'MiB/s':>7} "
          f"{'RSS before':>11} {'RSS peak':>9} {'growth':>7}")
    for r in rows:
        size = r["bytes"] / MIB
        growth = (r["rss_peak"] - r["rss_before"]) / MIB
        print(f"{r['run']:>3} {size:>10.1f} {r['seconds']:>8.2f} {size / r['seconds']:>7.1f} "
              f"{r['rss_before'] / MIB:>9.1f}Mi {r['rss_peak'] / MIB:>7.1f}Mi "
              f"{growth:>+6.1f}Mi")
    biggest = max(r["bytes"] for r in rows) / MIB
    print(f"process peak RSS (getrusage ru_maxrss): {max_rss_kib / 1024:.1f} MiB "
          f"for a {biggest:.0f} MiB series")
    worst = max(r["rss_peak"] - r["rss_before"] for r in rows) / MIB
    flat = worst <= budget_mb and biggest > 4 * budget_mb
    print(f"worst RSS growth {worst:.1f} MiB vs budget {budget_mb} MiB, series "
          f"{biggest / budget_mb:.1f}x the budget: {'FLAT' if flat else 'NOT SHOWN'}")
    return flat


if __name__ == "__main__":
    sys.exit(main())
