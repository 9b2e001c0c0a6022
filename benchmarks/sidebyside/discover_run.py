"""B5 contender: tcia-mirror's first discovery of one collection, nothing downloaded.

    python discover_run.py CONFIG COLLECTION

What a first ``sync`` does before its downloads (one full getSeries listing recorded in
the catalog, through ``discovery.discover``), in a process of its own so that its CPU
time and peak RSS are its alone. Prints the plan's counts as JSON.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from mirror.catalog import Catalog
from mirror.config.settings import load_settings
from mirror.sync import discovery
from mirror.tcia import TciaClient


async def main(config: Path, collection: str) -> dict[str, int]:
    settings = load_settings(config, env={})
    catalog = await Catalog.open(settings.catalog.url)
    try:
        await catalog.ensure_collections([collection])
        async with TciaClient(settings.source) as client:
            found = await discovery.discover(client, catalog, collection, settings=settings,
                                             now=datetime.now(UTC), force_full=True)
    finally:
        await catalog.close()
    return {"add": len(found.plan.add), "refetch": len(found.plan.refetch)}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(Path(sys.argv[1]), sys.argv[2]))))
