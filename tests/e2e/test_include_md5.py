"""v4 sync through the CLI: getImage?IncludeMD5=Yes, the collection's LICENSE, empty hashes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mirror.simulator.zips import license_text
from tests.e2e.harness import assert_archive_matches, write_mirror

pytestmark = pytest.mark.slow


def test_v4_sync_keeps_the_license_and_tolerates_empty_hashes(tmp_path: Path,
                                                              simulator: Any) -> None:
    (coll,) = simulator.collections()
    blank = simulator.set_stored_md5(blank=1)  # CTP stored " ": an empty-looking row
    mirror = write_mirror(tmp_path, base_url=simulator.base_url("nbia-v4"), api="nbia-v4",
                          collections=[coll], catalog_url=f"sqlite+aiosqlite:///{tmp_path}/c.db")

    summary = mirror.sync()

    truth = simulator.ground_truth()
    assert summary["outcome"] == "ok" and summary["failed"] == 0, summary
    assert_archive_matches(mirror.root, truth)  # the blank-hash image is stored too
    assert set(blank) <= {sop for s in truth.values() for sop in s.instances}
    requests = simulator.stats()["requests"]
    assert requests.get("nbia-v4:getImage") == len(truth)
    assert "nbia-v4:getImageWithMD5Hash" not in requests
    want = license_text(simulator.sim.catalog.collections[coll])
    assert (mirror.root / coll / "LICENSE").read_bytes() == want
    assert sorted(p.name for p in (mirror.root / coll).iterdir() if p.is_file()) == [
        "LICENSE", "metadata.csv"]  # the license, and the Data Retriever-style ledger
