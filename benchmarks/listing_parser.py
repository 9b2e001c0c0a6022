"""The getSeries listing parser against ijson's C backend: CPU seconds and peak RSS.

Generates an NLST-sized nbia-v4 getSeries body (200,000 series, ~184 MB, the same one
``benchmarks/sidebyside/bigcollection.py`` serves), then parses it in a fresh process per
run, fed in the transport's 256 KiB chunks, keeping nothing but a count. Usage:

    python benchmarks/listing_parser.py [--series 200000] [--runs 3] [--cache DIR]

Contenders: ``scanner`` (mirror.tcia.jsonstream.ArrayScanner), ``ijson-push`` (items_coro:
chunks pushed with send, the scanner's feed/close shape) and ``ijson-async`` (items over an
async ``read``), both on the yajl2_c backend with floats as float; skipped without ijson.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import BinaryIO

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.sidebyside.bigcollection import listing
from mirror.tcia.transport import CHUNK


def _scanner(path: Path) -> int:
    from mirror.tcia.jsonstream import ArrayScanner

    scanner, count = ArrayScanner(), 0
    with path.open("rb") as body:
        while chunk := body.read(CHUNK):
            count += len(scanner.feed(chunk))
    return count + len(scanner.close())


def _ijson(path: Path) -> int:
    import ijson

    items = ijson.sendable_list()  # the target ijson pushes each finished item into
    coro = ijson.items_coro(items, "item", use_float=True)
    count = 0
    with path.open("rb") as body:
        while chunk := body.read(CHUNK):
            coro.send(chunk)
            count += len(items)
            del items[:]
    coro.close()
    return count + len(items)


def _ijson_async(path: Path) -> int:
    """ijson's async interface, reading the chunks from an async ``read`` like a response's."""
    import asyncio

    import ijson

    class Body:
        def __init__(self, file: BinaryIO) -> None:
            self.file = file

        async def read(self, size: int) -> bytes:
            # ijson first reads 0 bytes to tell bytes from text; then a chunk at a time
            return self.file.read(CHUNK) if size else b""

    async def count() -> int:
        with path.open("rb") as body:
            return sum([1 async for _ in ijson.items(Body(body), "item", use_float=True)])

    return asyncio.run(count())


CONTENDERS = {"scanner": _scanner, "ijson-push": _ijson, "ijson-async": _ijson_async}


def _run(name: str, path: str, out: mp.Queue) -> None:
    start = resource.getrusage(resource.RUSAGE_SELF)
    wall = time.perf_counter()
    count = CONTENDERS[name](Path(path))
    end = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (end.ru_utime - start.ru_utime) + (end.ru_stime - start.ru_stime)
    out.put((count, cpu, time.perf_counter() - wall, end.ru_maxrss / 1024))


def measure(name: str, path: Path) -> tuple[int, float, float, float]:
    """(records, CPU s, wall s, peak RSS MiB) of one run in a fresh process."""
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()
    proc = ctx.Process(target=_run, args=(name, str(path), out))
    proc.start()
    proc.join()
    if proc.exitcode:
        raise SystemExit(f"{name} failed (exit code {proc.exitcode})")
    return out.get()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()))
    args = parser.parse_args()
    path = listing(args.cache / f"getSeries-{args.series}.json", args.series)
    print(f"listing: {path} ({path.stat().st_size / 1e6:.0f} MB, {args.series} series)")
    names = [n for n in CONTENDERS if not n.startswith("ijson") or _has_ijson()]
    print("| parser | records | CPU s (median) | wall s (median) | peak RSS MiB (max) |")
    print("|---|---|---|---|---|")
    results: dict[str, list[tuple[int, float, float, float]]] = {n: [] for n in names}
    for _ in range(args.runs):  # interleaved, so a busy moment hits every contender
        for name in names:
            results[name].append(measure(name, path))
    for name, runs in results.items():
        print(f"| {name} | {runs[0][0]} | {statistics.median(r[1] for r in runs):.2f} | "
              f"{statistics.median(r[2] for r in runs):.2f} | {max(r[3] for r in runs):.0f} |")


def _has_ijson() -> bool:
    try:
        import ijson
    except ImportError:
        return False
    return ijson.backend == "yajl2_c"


if __name__ == "__main__":
    main()
