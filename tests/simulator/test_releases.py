"""Releases: what each dialect's New* endpoints report around the release date, and ZIPs."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import date
from pathlib import Path

import pytest

from mirror.errors import UsageError
from mirror.simulator.testing import SimulatorHandle, start_simulator
from tests.simulator.conftest import fetch

ON = date(2024, 3, 10)


async def _json(url: str, **params: str) -> list[dict]:
    raw = await fetch(url, **params)
    assert raw.status == 200, raw.text
    return json.loads(raw.body) if raw.body else []


async def test_release_changes_listing_and_truth(simulator: SimulatorHandle) -> None:
    before = simulator.ground_truth()
    r = simulator.publish_release(ON, new_patients=1, new_studies=1, new_series=1, revised=1,
                                  withdrawn=1)
    after = simulator.ground_truth()
    assert len(r.new_patient_ids) == 1 and len(r.new_study_uids) == 2  # patient's + new study
    assert len(r.new_series_uids) == 2 + 2 + 1  # 2 per new study, plus one lone series
    assert set(r.new_series_uids) <= set(after) and not set(r.new_series_uids) & set(before)
    (gone,), (rev,) = r.withdrawn_series_uids, r.revised_series_uids
    assert gone not in after and gone in before
    assert after[rev].image_count == before[rev].image_count + 1
    assert after[rev].file_size != before[rev].file_size
    assert len(set(after[rev].instances) - set(before[rev].instances)) == 2  # 1 replaced, 1 added
    rows = {r["SeriesInstanceUID"]: r for r in
            await _json(simulator.base_url("nbia-v1") + "/getSeries")}
    assert set(rows) == set(after)
    assert rows[rev]["ImageCount"] == after[rev].image_count
    assert rows[rev]["DateReleased"] == "2024-03-10 00:00:00.0"
    missing = await fetch(simulator.base_url("nbia-v1") + "/getImage", SeriesInstanceUID=gone)
    assert missing.status == 400
    raw = await fetch(simulator.base_url("nbia-v1") + "/getImageWithMD5Hash",
                      SeriesInstanceUID=rev)
    with zipfile.ZipFile(io.BytesIO(raw.body)) as zf:
        hashes = zf.read("md5hashes.csv").decode()
    assert {line.split(",")[1] for line in hashes.splitlines()[1:]} == {
        i.md5 for i in after[rev].instances.values()}


async def test_new_patients_date_semantics_per_dialect(simulator: SimulatorHandle) -> None:
    r = simulator.publish_release(ON, new_patients=1)
    (pid,) = r.new_patient_ids
    v1 = simulator.base_url("nbia-v1") + "/NewPatientsInCollection"
    v4 = simulator.base_url("nbia-v4") + "/NewPatientsInCollection"
    v3 = simulator.base_url("v3") + "/NewPatientsInCollection"
    coll = "SIM-LUNG"
    # v1: strict ">" on the release date.
    assert await _json(v1, Collection=coll, Date="2024/03/10") == []
    assert [p["PatientId"] for p in await _json(v1, Collection=coll, Date="2024/3/9")] == [pid]
    assert await _json(v1, Collection=coll, Date="2024-03-09") == []  # unparsable
    # v4: inclusive ">=", MM-DD-YYYY.
    assert [p["PatientId"] for p in await _json(v4, Collection=coll, fromDate="03-10-2024")] \
        == [pid]
    assert await _json(v4, Collection=coll, fromDate="03-11-2024") == []
    # v3 (documented choice): inclusive, YYYY-MM-DD.
    assert [p["PatientID"] for p in await _json(v3, Collection=coll, Date="2024-03-10")] == [pid]
    assert await _json(v3, Collection=coll, Date="2024-03-11") == []
    everyone = await _json(v1, Collection=coll, Date="2019/12/31")
    assert len(everyone) == 3


async def test_new_studies_count_only_new_series(simulator: SimulatorHandle) -> None:
    r = simulator.publish_release(ON, new_series=1)
    (uid,) = r.new_series_uids
    study = simulator.ground_truth()[uid].study_uid
    rows = await _json(simulator.base_url("nbia-v1") + "/NewStudiesInPatientCollection",
                       Collection="SIM-LUNG", Date="2024/03/09")
    assert [(s["StudyInstanceUID"], s["SeriesCount"]) for s in rows] == [(study, 1)]
    v4 = await _json(simulator.base_url("nbia-v4") + "/NewStudiesInPatientCollection",
                     Collection="SIM-LUNG", fromDate="03-10-2024")
    assert [s["StudyInstanceUID"] for s in v4] == [study]
    assert "PatientBirthDate" not in v4[0] and v4[0]["StudyDate"].count("-") == 2


async def test_updated_series_is_strict_in_both_dialects(simulator: SimulatorHandle) -> None:
    r = simulator.publish_release(ON, revised=1)
    (rev,) = r.revised_series_uids
    v1 = simulator.base_url("nbia-v1") + "/getUpdatedSeries"
    v4 = simulator.base_url("nbia-v4") + "/getUpdatedSeries"
    assert [s["SeriesInstanceUID"] for s in await _json(v1, fromDate="09/03/2024")] == [rev]
    assert await _json(v1, fromDate="10/03/2024") == []
    assert [s["SeriesInstanceUID"] for s in await _json(v4, fromDate="03-09-2024")] == [rev]
    assert await _json(v4, fromDate="03-10-2024") == []
    assert len(await _json(v1)) == 4  # default 01/01/1900


def test_releases_never_leak_into_a_fresh_server(simulator: SimulatorHandle,
                                                 sim_data_dir: Path) -> None:
    base = simulator.ground_truth()
    simulator.publish_release(ON, new_patients=2, revised=2, withdrawn=1)
    assert simulator.ground_truth() != base
    with start_simulator(sim_data_dir) as fresh:
        assert fresh.ground_truth() == base


def test_release_admin_validation(simulator: SimulatorHandle) -> None:
    with pytest.raises(UsageError):
        simulator.publish_release(ON, withdrawn=99)
    with pytest.raises(UsageError):
        simulator.publish_release(ON, new_patients=1, collection="NOPE")
