"""Hostile UIDs and names from the server never write outside the archive root (real CLI)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.harness import catalog_series
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

PAYLOAD = b"PWNED: server bytes that must never land outside the archive root"


def _hostile_uids(tmp: Path) -> dict[str, str]:
    return {"dotdot": "../../../pwned", "absolute": str(tmp / "abs-pwned"),
            "65 chars": "1." + "2" * 63, "nul": "1.2\x003"}


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "65 chars", "nul"])
def test_hostile_sop_uid_in_repair_answer(tmp_path: Path, server: HostileServer,
                                          kind: str) -> None:
    """getSOPInstanceUIDs answers never become paths: a repair falls back to the ZIP."""
    victim, other = FakeSeries.make(1, n=4), FakeSeries.make(2)
    server.series = [victim, other]
    mirror = mirror_for(tmp_path, server)
    mirror.sync()
    gone = sorted(mirror.root.rglob(f"{victim.instances[0][0]}.dcm"))[0]
    gone.unlink()  # damage: verify --repair re-queues the series for an instance repair
    assert mirror.run("verify", "--repair").returncode == 0

    hostile = _hostile_uids(tmp_path)[kind]
    victim.sop_answer = [s for s, _ in victim.instances] + [hostile]
    server.single_image = lambda series, sop: PAYLOAD if sop == hostile else None
    before = snapshot_files(tmp_path)
    proc = mirror.run("sync", "--json")

    assert files_outside(mirror, before, tmp_path) == []
    assert partial_files(mirror.root) == []
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert server.requests["getSOPInstanceUIDs"] >= 1  # the hostile answer was served
    assert stored_sops(mirror.root) == {s for s, _ in victim.instances + other.instances}
    states = {uid: row.state for uid, row in catalog_series(mirror.catalog_url).items()}
    assert states == {victim.series_uid: "done", other.series_uid: "done"}


def test_hostile_series_uids_in_listing_are_skipped(tmp_path: Path,
                                                   server: HostileServer) -> None:
    """A row whose SeriesInstanceUID is no UID cannot be keyed: skipped, counted, logged."""
    good = FakeSeries.make(1)
    bad = []
    for k, uid in enumerate(_hostile_uids(tmp_path).values(), start=2):
        series = FakeSeries.make(k)
        series.series_uid = uid
        bad.append(series)
    server.series = [*bad, good]
    mirror = mirror_for(tmp_path, server)
    before = snapshot_files(tmp_path)
    proc = mirror.run("sync", "--json")

    assert files_outside(mirror, before, tmp_path) == []
    assert partial_files(mirror.root) == []
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout)
    assert summary["plan"]["HOSTILE"]["skipped_rows"] == len(bad)
    assert proc.stderr.count("row skipped") == len(bad)
    assert stored_sops(mirror.root) == {s for s, _ in good.instances}
    assert set(catalog_series(mirror.catalog_url)) == {good.series_uid}


def test_hostile_study_uids_in_listing_fail_their_series(tmp_path: Path,
                                                        server: HostileServer) -> None:
    good = FakeSeries.make(1)
    bad = [FakeSeries.make(k, row={"StudyInstanceUID": uid})
           for k, uid in enumerate(_hostile_uids(tmp_path).values(), start=2)]
    server.series = [*bad, good]
    mirror = mirror_for(tmp_path, server)
    before = snapshot_files(tmp_path)
    proc = mirror.run("sync", "--json")

    assert files_outside(mirror, before, tmp_path) == []
    assert partial_files(mirror.root) == []
    assert proc.returncode == 1, proc.stderr[-2000:]
    summary = json.loads(proc.stdout)
    assert sorted(summary["failed_series"]) == sorted(s.series_uid for s in bad)
    assert all("StudyInstanceUID" in summary["errors"][s.series_uid] for s in bad)
    rows = catalog_series(mirror.catalog_url)
    assert rows[good.series_uid].state == "done"
    assert all(rows[s.series_uid].state == "failed" for s in bad)
    assert stored_sops(mirror.root) == {s for s, _ in good.instances}


NAMES = {
    "dotdot": "../../../pwned", "absolute": "/tmp/pwned", "dot": "..", "slash": "a/../../b",
    "backslash": "..\\..\\pwned", "escape": "P\x1b[2J\x1b]0;owned\x07", "empty": "",
    "long": "P" * 300, "unicode-dots": "\u2024\u2024", "suffix-like": "P~0123456789ab",
}


@pytest.mark.parametrize("layout", ["uid", "descriptive"])
def test_hostile_names_stay_inside_the_root(tmp_path: Path, server: HostileServer,
                                            layout: str) -> None:
    """PatientID, Collection and descriptions are made safe path components, reversibly:
    every series is stored, each in its own directory inside the root."""
    collection = "../HOSTILE/.."
    series = []
    for k, (_, name) in enumerate(sorted(NAMES.items()), start=1):
        s = FakeSeries.make(k, collection=collection, patient_id=name[:256], n=2)
        s.row = {"SeriesDescription": name, "StudyDescription": name, "StudyDate": name,
                 "SeriesNumber": name, "StudyID": name}
        series.append(s)
    server.series = series
    mirror = mirror_for(tmp_path, server, collections=[collection], layout=layout)
    before = snapshot_files(tmp_path)
    proc = mirror.run("sync", "--json")

    assert files_outside(mirror, before, tmp_path) == []
    assert partial_files(mirror.root) == []
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert stored_sops(mirror.root) == {sop for s in series for sop, _ in s.instances}
    rows = catalog_series(mirror.catalog_url)
    dirs = {rows[s.series_uid].local_path for s in series}
    assert len(dirs) == len(series)  # distinct names never share a directory
    for s in series:
        row = rows[s.series_uid]
        assert row.state == "done"
        assert row.patient_id == s.patient_id  # the catalog keeps the original name
        assert (mirror.root / row.local_path).resolve().is_relative_to(mirror.root.resolve())
