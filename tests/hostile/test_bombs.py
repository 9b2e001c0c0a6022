"""Decompression bombs are refused before they fill staging; the other series go on (CLI).

Every sync here runs under RLIMIT_FSIZE, so even a mirror that let a bomb through could
not write a file larger than FILE_LIMIT; the assertions then show it refused the bomb as
hostile instead of failing on a write.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from tests.e2e.harness import catalog_series
from tests.hostile.hostile_server import (
    FakeSeries,
    HostileServer,
    bomb_zip,
    files_outside,
    mirror_for,
    partial_files,
    run_limited,
    snapshot_files,
    stored_sops,
)

pytestmark = pytest.mark.timeout(240)

MiB = 1 << 20
FILE_LIMIT = 32 * MiB
#: No FileSize or ImageCount in the listing: the caps must come from elsewhere.
UNLISTED = {"FileSize": None, "ImageCount": None}


def _bombs() -> dict[str, tuple[dict[str, object], list[int], int]]:
    """case -> (listing overrides, zero bytes per entry, ZIP method)."""
    return {
        # one 80 MiB entry from an ~80 KB ZIP (DEFLATE at its ~1000:1 best), sizes unlisted
        "one entry, no listed size": (UNLISTED, [80 * MiB], zipfile.ZIP_DEFLATED),
        # 100 entries of 1 MiB each: every entry passes the per-entry caps, the sum does not
        "spread over many entries": (UNLISTED, [MiB] * 100, zipfile.ZIP_DEFLATED),
        # bzip2 of zeros: a ratio far above what honest DEFLATE can reach
        "high-ratio entry": ({"ImageCount": 1, "FileSize": 24 * MiB}, [24 * MiB],
                             zipfile.ZIP_BZIP2),
    }


@pytest.mark.parametrize("case", list(_bombs()))
def test_bomb_is_refused_before_it_is_inflated(tmp_path: Path, server: HostileServer,
                                               case: str) -> None:
    fields, sizes, method = _bombs()[case]
    good = FakeSeries.make(1)
    bomb = FakeSeries.make(2, row=dict(fields))
    bomb.zip_body = bomb_zip(bomb, sizes, method=method)
    server.series = [bomb, good]
    mirror = mirror_for(tmp_path, server, verify="count")
    before = snapshot_files(tmp_path)
    proc = run_limited(mirror, "sync", "--json", max_file_bytes=FILE_LIMIT)

    assert files_outside(mirror, before, tmp_path) == []
    assert partial_files(mirror.root) == []
    assert proc.returncode == 1, proc.stderr[-2000:]
    summary = json.loads(proc.stdout)
    assert summary["failed_series"] == [bomb.series_uid]
    error = summary["errors"][bomb.series_uid]
    assert error.startswith("HostileArchive"), error
    rows = catalog_series(mirror.catalog_url)
    assert rows[good.series_uid].state == "done" and rows[bomb.series_uid].state == "failed"
    assert stored_sops(mirror.root) == {s for s, _ in good.instances}
    assert list((mirror.root / ".staging").rglob("*.dcm")) == []
