"""Contender: TCIA's own client, tcia_utils, mirroring one collection the way its docs show.

    python tcia_utils_run.py BASE_URL COLLECTION OUT_DIR [--max-workers 10]

getSeries(collection) then downloadSeries(...) with its defaults (getImage with
NewFileNames=Yes, no hash, whole ZIP in memory, ``max_workers=10`` threads). Its host is
hard-coded, so ``setApiUrl`` (the one place that builds it) is pointed at the simulator.
"""

from __future__ import annotations

import argparse
import sys
import warnings


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("base_url")
    parser.add_argument("collection")
    parser.add_argument("out_dir")
    parser.add_argument("--max-workers", type=int, default=10)
    args = parser.parse_args()
    # tcia_utils calls a pandas API that newer pandas deprecates: not what we measure.
    warnings.simplefilter("ignore")
    from tcia_utils import nbia

    base = args.base_url.rstrip("/") + "/"
    nbia.setApiUrl = lambda endpoint, api_url="nbia": base
    series = nbia.getSeries(collection=args.collection)
    if not series:
        print("tcia_utils: empty getSeries listing", file=sys.stderr)
        return 1
    nbia.downloadSeries(series, path=args.out_dir, max_workers=args.max_workers)
    print(f"tcia_utils: asked for {len(series)} series")
    return 0


if __name__ == "__main__":
    sys.exit(main())
