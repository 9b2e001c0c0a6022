"""Wire details per dialect: key names and order, dates, escaping, empty bodies, 400 texts."""

from __future__ import annotations

import json

import pytest

from mirror.simulator.testing import SimulatorHandle
from tests.simulator.conftest import fetch

V1_SERIES = ["SeriesInstanceUID", "StudyInstanceUID", "Modality", "ProtocolName", "SeriesDate",
             "SeriesDescription", "BodyPartExamined", "SeriesNumber", "AnnotationsFlag",
             "Collection", "PatientID", "Manufacturer", "ManufacturerModelName",
             "SoftwareVersions", "ImageCount", "TimeStamp", "LicenseName", "LicenseURI",
             "CollectionURI", "FileSize", "DateReleased", "StudyDesc", "StudyDate",
             "ThirdPartyAnalysis"]
V4_SERIES = ["SeriesInstanceUID", "StudyInstanceUID", "Modality", "ProtocolName", "SeriesDate",
             "SeriesDescription", "BodyPartExamined", "SeriesNumber", "AnnotationsFlag",
             "Collection", "Site", "PatientID", "PatientSex", "PatientAge",
             "AdmittingDiagnosisDescription", "Manufacturer", "ManufacturerModelName",
             "SoftwareVersions", "ImageCount", "MaxSubmissionTimestamp", "LicenseName",
             "LicenseURI", "DataDescriptionURI", "FileSize", "ReleasedStatus", "DateReleased",
             "StudyDesc", "StudyDate", "ThirdPartyAnalysis", "Authorized"]


def in_order(keys: list[str], reference: list[str]) -> bool:
    """*keys* is *reference* with some (null) keys left out, order kept."""
    return keys == [k for k in reference if k in keys]


async def test_v1_get_series_shape(simulator: SimulatorHandle) -> None:
    raw = await fetch(simulator.base_url("nbia-v1") + "/getSeries", Collection="SIM-LUNG")
    assert raw.headers["Content-Type"] == "application/json"
    assert b"\n" not in raw.body and b", " not in raw.body
    assert b'"LicenseURI":"https:\\/\\/creativecommons.org\\/licenses\\/by\\/4.0\\/"' in raw.body
    rows = json.loads(raw.body)
    for row in rows:
        assert in_order(list(row), V1_SERIES)
        assert {"SeriesInstanceUID", "ImageCount", "FileSize", "DateReleased"} <= set(row)
        assert isinstance(row["ImageCount"], int) and isinstance(row["FileSize"], int)
        assert row["DateReleased"] == "2020-01-15 00:00:00.0"
        assert row["TimeStamp"].endswith(".0") and len(row["TimeStamp"]) == 21


async def test_v4_get_series_shape(simulator: SimulatorHandle) -> None:
    rows = json.loads((await fetch(simulator.base_url("nbia-v4") + "/getSeries")).body)
    assert rows
    for row in rows:
        assert in_order(list(row), V4_SERIES)
        assert row["DateReleased"] == "01-15-2020"
        assert row["Authorized"] == 1


async def test_v3_get_series_shape(simulator: SimulatorHandle) -> None:
    rows = json.loads((await fetch(simulator.base_url("v3") + "/getSeries",
                                   format="json")).body)
    assert list(rows[0])[:4] == ["PatientID", "Collection", "StudyInstanceUID",
                                 "SeriesInstanceUID"]
    assert "FileSize" not in rows[0]


async def test_get_patient_key_spelling(simulator: SimulatorHandle) -> None:
    v1 = json.loads((await fetch(simulator.base_url("nbia-v1") + "/getPatient")).body)
    v4 = json.loads((await fetch(simulator.base_url("nbia-v4") + "/getPatient")).body)
    v3 = json.loads((await fetch(simulator.base_url("v3") + "/getPatient")).body)
    assert list(v1[0]) == ["PatientId", "PatientName", "PatientSex", "Collection", "Phantom",
                           "SpeciesCode", "SpeciesDescription"]  # nulls omitted
    assert v1[0]["PatientName"] == "" and v1[0]["SpeciesCode"] == "337915000"
    assert list(v4[0])[-1] == "Authorized"
    assert "PatientID" in v3[0]
    one = await fetch(simulator.base_url("nbia-v1") + "/getPatient", PatientId="SIM-LUNG-0002")
    assert [r["PatientId"] for r in json.loads(one.body)] == ["SIM-LUNG-0002"]


@pytest.mark.parametrize("api", ["nbia-v1", "nbia-v4"])
async def test_empty_result_is_200_with_empty_body(simulator: SimulatorHandle, api: str) -> None:
    raw = await fetch(simulator.base_url(api) + "/getSeries", Collection="NO-SUCH")
    assert raw.status == 200
    assert raw.body == b""
    assert "Content-Type" not in raw.headers
    empty_value = await fetch(simulator.base_url(api) + "/getPatientStudy", Collection="")
    assert (empty_value.status, empty_value.body) == (200, b"")


async def test_v3_empty_result_is_an_empty_json_array(simulator: SimulatorHandle) -> None:
    raw = await fetch(simulator.base_url("v3") + "/getSeries", Collection="NO-SUCH")
    assert (raw.status, raw.body, raw.headers["Content-Type"]) == (200, b"[]",
                                                                   "application/json")


@pytest.mark.parametrize(("endpoint", "text"), [
    ("getSeriesSize", "A parameter, SeriesInstanceUID is required for this API call."),
    ("getSOPInstanceUIDs", "A parameter, SeriesInstanceUID is required for this API call."),
    ("getImage", "A parameter, SeriesInstanceUID, is required for this API call."),
    ("getImageWithMD5Hash", "A parameter, SeriesInstanceUID, is required for this API call."),
    ("getSingleImage", "A parameter, SeriesInstanceUID and SOPInstanceUID, are required for "
                       "this API call."),
    ("NewPatientsInCollection", "A parameter, Collection and Date are required for this API "
                                "call."),
    ("NewStudiesInPatientCollection", "A parameter, Collection and Date are required for this "
                                      "API call."),
    ("getPatientByCollectionAndModality", "A parameter, Collection and Modality, are required "
                                          "for this API call."),
    ("getContentsByName", "A parameter, name is required for this API call."),
])
async def test_missing_parameter_texts(simulator: SimulatorHandle, endpoint: str,
                                       text: str) -> None:
    raw = await fetch(simulator.base_url("nbia-v1") + "/" + endpoint)
    assert raw.status == 400
    assert raw.text == text
    assert raw.headers["Content-Type"] == "application/json"


async def test_v4_rejects_unknown_parameters_v1_ignores_them(simulator: SimulatorHandle) -> None:
    v4 = await fetch(simulator.base_url("nbia-v4") + "/getSeries", collection="SIM-LUNG")
    assert v4.status == 400
    assert v4.text.startswith("Invalid query parameter: 'collection'. Allowed parameters are: [")
    assert "Collection" in v4.text and v4.text.endswith("]")
    v1 = await fetch(simulator.base_url("nbia-v1") + "/getSeries", collection="NO-SUCH")
    assert v1.status == 200 and len(json.loads(v1.body)) == 4  # ignored: unfiltered
    v4_date = await fetch(simulator.base_url("nbia-v4") + "/NewPatientsInCollection",
                          Collection="SIM-LUNG", Date="2019/01/01")
    assert v4_date.status == 400 and "'Date'" in v4_date.text


async def test_series_size_and_sop_uids(simulator: SimulatorHandle) -> None:
    uid, truth = next(iter(simulator.ground_truth().items()))
    v1 = simulator.base_url("nbia-v1")
    size = json.loads((await fetch(v1 + "/getSeriesSize", SeriesInstanceUID=uid)).body)
    assert size == [{"TotalSizeInBytes": truth.file_size, "ObjectCount": truth.image_count}]
    raw = await fetch(v1 + "/getSeriesSize", SeriesInstanceUID="1.2.3")
    assert raw.body == b"[{}]"
    v4 = await fetch(simulator.base_url("nbia-v4") + "/getSeriesSize", SeriesInstanceUID="1.2.3")
    assert (v4.status, v4.body) == (200, b"")
    sops = json.loads((await fetch(v1 + "/getSOPInstanceUIDs", SeriesInstanceUID=uid)).body)
    assert {r["SOPInstanceUID"] for r in sops} == set(truth.instances)


async def test_value_lists(simulator: SimulatorHandle) -> None:
    v1, v4 = simulator.base_url("nbia-v1"), simulator.base_url("nbia-v4")
    mods = json.loads((await fetch(v1 + "/getModalityValues", Collection="sim-lung")).body)
    assert mods == [{"Modality": "CT"}]
    makers_v1 = [r.get("Manufacturer") for r in
                 json.loads((await fetch(v1 + "/getManufacturerValues")).body)]
    makers_v4 = [r.get("Manufacturer") for r in
                 json.loads((await fetch(v4 + "/getManufacturerValues")).body)]
    assert makers_v4 == [m.upper() for m in makers_v1]
    assert makers_v1 == sorted(makers_v1, key=str.upper)
    parts = json.loads((await fetch(v1 + "/getBodyPartValues")).body)
    assert all(p == {} or p["BodyPartExamined"].isupper() for p in parts)


async def test_patient_study_and_by_modality(simulator: SimulatorHandle) -> None:
    v1 = simulator.base_url("nbia-v1")
    studies = json.loads((await fetch(v1 + "/getPatientStudy", Collection="SIM-LUNG")).body)
    assert len(studies) == 2 and all(s["SeriesCount"] == 2 for s in studies)
    assert list(studies[0])[:2] == ["StudyInstanceUID", "StudyDate"]
    assert studies[0]["StudyDate"].endswith(" 00:00:00.0")
    pats = json.loads((await fetch(v1 + "/getPatientByCollectionAndModality",
                                   Collection="SIM-LUNG", Modality="CT")).body)
    assert sorted(p["PatientId"] for p in pats) == ["SIM-LUNG-0001", "SIM-LUNG-0002"]
    v3 = json.loads((await fetch(simulator.base_url("v3") + "/PatientsByModality",
                                 Collection="SIM-LUNG", Modality="CT")).body)
    assert all(list(p) == ["PatientID"] for p in v3)
