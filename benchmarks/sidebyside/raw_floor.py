"""Contender: the raw floor. The same ZIP bytes tcia-mirror fetches, in parallel, unzipped.

    python raw_floor.py BASE_URL COLLECTION OUT_DIR [--concurrency 8]

One getSeries listing, then getImageWithMD5Hash for every series (``--concurrency`` at a
time, tcia-mirror's default worker count), each body read into memory and extracted in a
thread. No catalog, no checks, no staging, no fsync: nothing a mirror could skip.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import sys
import zipfile
from pathlib import Path

import aiohttp


async def mirror(base: str, collection: str, out: Path, concurrency: int) -> int:
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=300)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        async with session.get(f"{base}/getSeries", params={"Collection": collection}) as r:
            r.raise_for_status()
            listing = await r.json(content_type=None)
        gate = asyncio.Semaphore(concurrency)

        async def one(uid: str) -> None:
            async with gate:
                async with session.get(f"{base}/getImageWithMD5Hash",
                                       params={"SeriesInstanceUID": uid}) as r:
                    r.raise_for_status()
                    body = await r.read()
                await asyncio.to_thread(_unzip, body, out / uid)

        await asyncio.gather(*(one(s["SeriesInstanceUID"]) for s in listing))
    return len(listing)


def _unzip(body: bytes, dest: Path) -> None:
    with zipfile.ZipFile(io.BytesIO(body)) as zf:
        zf.extractall(dest)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("base_url")
    parser.add_argument("collection")
    parser.add_argument("out_dir")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    n = asyncio.run(mirror(args.base_url.rstrip("/"), args.collection, Path(args.out_dir),
                           args.concurrency))
    print(f"raw floor: {n} series")
    return 0


if __name__ == "__main__":
    sys.exit(main())
