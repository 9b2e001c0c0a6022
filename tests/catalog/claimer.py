"""A claiming process for the concurrency tests: ``python -m tests.catalog.claimer``.

``drain``: say READY, wait for a line on stdin, then claim until the queue is empty,
printing every claimed series UID. ``hold``: claim up to --count series, print them and
READY, then keep their leases alive with heartbeats until killed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from mirror.catalog import Catalog


async def drain(catalog: Catalog, owner: str, batch: int, lease: float) -> None:
    print("READY", flush=True)
    await asyncio.to_thread(sys.stdin.readline)  # the start barrier
    while claimed := await catalog.claim(owner, batch, lease_seconds=lease):
        print("\n".join(c.series_uid for c in claimed), flush=True)


async def hold(catalog: Catalog, owner: str, count: int, lease: float, beat: float) -> None:
    claimed = [c.series_uid for c in await catalog.claim(owner, count, lease_seconds=lease)]
    print("\n".join([*claimed, "READY"]), flush=True)
    while True:
        await asyncio.sleep(beat)  # heartbeat period, not a wait for a condition
        await catalog.heartbeat(owner, claimed, lease_seconds=lease)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["drain", "hold"])
    parser.add_argument("url")
    parser.add_argument("owner")
    parser.add_argument("--batch", type=int, default=25)
    parser.add_argument("--lease", type=float, default=600.0)
    parser.add_argument("--heartbeat", type=float, default=0.3)
    args = parser.parse_args()
    catalog = await Catalog.open(args.url, upgrade=False)
    try:
        if args.mode == "drain":
            await drain(catalog, args.owner, args.batch, args.lease)
        else:
            await hold(catalog, args.owner, args.batch, args.lease, args.heartbeat)
    finally:
        await catalog.close()


if __name__ == "__main__":
    asyncio.run(main())
