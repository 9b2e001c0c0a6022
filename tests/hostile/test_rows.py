"""One bad listing row fails only its own series; the collection and the rest go on (CLI)."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest

from mirror.errors import MirrorError
from tests.e2e.harness import catalog_series
from tests.e2e.test_daemon import free_port, http_get, running, wait_for
from tests.hostile.hostile_server import (
    FakeSeries,
    HostileServer,
    files_outside,
    mirror_for,
    partial_files,
    snapshot_files,
    stored_sops,
)

pytestmark = pytest.mark.timeout(180)

#: case -> (listing fields of the bad row, a word its recorded reason must name)
BAD_ROWS: dict[str, tuple[dict[str, Any], str]] = {
    "FileSize 1e30": ({"FileSize": 1e30}, "FileSize"),
    "FileSize 2^63": ({"FileSize": 2**63}, "FileSize"),
    "FileSize -1": ({"FileSize": -1}, "FileSize"),
    "ImageCount 1e30 as text": ({"ImageCount": "1e30"}, "ImageCount"),
    "ImageCount negative": ({"ImageCount": -3}, "ImageCount"),
    "NUL in PatientID": ({"PatientID": "P\x00X"}, "PatientID"),
    "lone surrogate in PatientID": ({"PatientID": "P\ud800"}, "PatientID"),
    "PatientID of 300 characters": ({"PatientID": "P" * 300}, "PatientID"),
    "row of another collection": ({"Collection": "OTHER-COLLECTION"}, "OTHER-COLLECTION"),
}


def test_each_bad_row_fails_only_its_series(tmp_path: Path, server: HostileServer) -> None:
    """Every case of BAD_ROWS in one listing, between good series: each bad one is failed
    with its reason, the others complete, on the first run and on the next."""
    good = [FakeSeries.make(k) for k in (1, 2)]
    bad = {case: FakeSeries.make(10 + i, row=fields)
           for i, (case, (fields, _)) in enumerate(BAD_ROWS.items())}
    server.series = [good[0], *bad.values(), good[1]]
    mirror = mirror_for(tmp_path, server)
    before = snapshot_files(tmp_path)

    for _ in range(2):  # and again: a bad row must not stop later runs either
        proc = mirror.run("sync", "--json")
        assert proc.returncode == 1, proc.stderr[-2000:]  # finished, some series failed
        summary = json.loads(proc.stdout)
        assert summary["failed_collections"] == {}
        assert sorted(summary["failed_series"]) == sorted(s.series_uid for s in bad.values())
        rows = catalog_series(mirror.catalog_url)
        for case, series in bad.items():
            row = rows[series.series_uid]
            assert row.state == "failed", case
            assert row.collection == "HOSTILE", case  # recorded where it was listed
            assert (row.last_error or "").startswith("bad listing row"), case
            assert BAD_ROWS[case][1] in summary["errors"][series.series_uid], case
        assert all(rows[s.series_uid].state == "done" for s in good)

    assert files_outside(mirror, before, tmp_path) == []
    assert partial_files(mirror.root) == []
    assert stored_sops(mirror.root) == {sop for s in good for sop, _ in s.instances}


def test_a_fixed_row_revives_its_series(tmp_path: Path, server: HostileServer) -> None:
    series = FakeSeries.make(1, row={"FileSize": 1e30})
    server.series = [series]
    mirror = mirror_for(tmp_path, server)
    assert mirror.run("sync", "--json").returncode == 1
    series.row = {}
    proc = mirror.run("sync", "--json", "--reconcile")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert catalog_series(mirror.catalog_url)[series.series_uid].state == "done"


#: Rows without a usable SeriesInstanceUID: nothing to key a catalog row by.
UNKEYABLE = [
    {"SeriesInstanceUID": "../../etc"}, {"SeriesInstanceUID": "1." + "2" * 63},
    {"SeriesInstanceUID": 1.5e300}, {"SeriesInstanceUID": {"nested": "object"}},
    {"SeriesInstanceUID": ""}, {"SeriesInstanceUID": ["1.2"]},
]


def test_rows_that_cannot_be_keyed_are_skipped_and_counted(tmp_path: Path,
                                                           server: HostileServer) -> None:
    good = FakeSeries.make(1)
    server.series = [good]
    server.extra_rows = UNKEYABLE
    mirror = mirror_for(tmp_path, server)
    before = snapshot_files(tmp_path)
    proc = mirror.run("sync", "--json")

    assert files_outside(mirror, before, tmp_path) == []
    assert partial_files(mirror.root) == []
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout)
    assert summary["plan"]["HOSTILE"]["skipped_rows"] == len(UNKEYABLE)
    assert proc.stderr.count("row skipped") == len(UNKEYABLE)
    assert set(catalog_series(mirror.catalog_url)) == {good.series_uid}
    assert stored_sops(mirror.root) == {s for s, _ in good.instances}


def test_daemon_survives_bad_rows(tmp_path: Path, server: HostileServer) -> None:
    good = FakeSeries.make(1)
    bad = [FakeSeries.make(10 + i, row=fields) for i, (fields, _) in enumerate(BAD_ROWS.values())]
    server.series = [*bad, good]
    server.extra_rows = UNKEYABLE
    port = free_port()
    mirror = mirror_for(tmp_path, server, extra=f'poll_interval = "2s"\n[daemon]\n'
                                                f'listen = "127.0.0.1:{port}"\n'
                                                f'shutdown_timeout = "5s"\n')
    with running(mirror.popen("daemon")) as proc:
        def settled() -> bool:
            try:
                rows = catalog_series(mirror.catalog_url)
            except MirrorError:  # the daemon is still creating the catalog
                return False
            return (rows.get(good.series_uid) is not None
                    and rows[good.series_uid].state == "done"
                    and all(rows.get(s.series_uid) is not None
                            and rows[s.series_uid].state == "failed" for s in bad))

        wait_for("good series done, bad ones failed", settled)
        polls = server.requests["getSeries"]
        wait_for("another poll", lambda: server.requests["getSeries"] + server.requests[
            "NewPatientsInCollection"] > polls)
        status, _ = http_get(f"http://127.0.0.1:{port}/healthz")
        assert status == 200 and proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
