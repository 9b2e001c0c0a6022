"""Image endpoints: ZIP names and order, MD5 variant, single images, MD5 lookups."""

from __future__ import annotations

import csv
import hashlib
import io
import zipfile

import pydicom

from mirror.simulator.testing import SimulatorHandle
from tests.simulator.conftest import fetch


def _zip(body: bytes) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(body))


async def test_new_file_names_follow_instance_number(simulator: SimulatorHandle) -> None:
    uid, _truth = next(iter(simulator.ground_truth().items()))
    raw = await fetch(simulator.base_url("nbia-v4") + "/getImage", NewFileNames="Yes",
                      SeriesInstanceUID=uid)
    with _zip(raw.body) as zf:
        names = zf.namelist()
        assert names[0] == "LICENSE"
        assert names[1:] == ["1-1.dcm", "1-2.dcm", "1-3.dcm"]
        numbers = [pydicom.dcmread(io.BytesIO(zf.read(n))).InstanceNumber for n in names[1:]]
        licence = zf.read("LICENSE").decode()
    assert numbers == [1, 2, 3]
    assert licence.startswith("License Information. The SIM-LUNG collection is distributed")


async def test_md5_variant_has_no_license_and_ends_with_hashes(
        simulator: SimulatorHandle) -> None:
    uid, truth = next(iter(simulator.ground_truth().items()))
    for api in ("nbia-v1", "nbia-v4"):
        raw = await fetch(simulator.base_url(api) + "/getImageWithMD5Hash",
                          SeriesInstanceUID=uid)
        with _zip(raw.body) as zf:
            names = zf.namelist()
            assert "LICENSE" not in names and names[-1] == "md5hashes.csv"
            text = zf.read("md5hashes.csv").decode()
            rows = list(csv.DictReader(io.StringIO(text)))
            assert text.startswith("Filename,MD5Hash\n")
            for row in rows:
                assert hashlib.md5(zf.read(row["Filename"])).hexdigest() == row["MD5Hash"]
        assert {r["MD5Hash"] for r in rows} == {i.md5 for i in truth.instances.values()}


async def test_include_md5_on_v4_get_image(simulator: SimulatorHandle) -> None:
    uid = next(iter(simulator.ground_truth()))
    raw = await fetch(simulator.base_url("nbia-v4") + "/getImage", SeriesInstanceUID=uid,
                      IncludeMD5="Yes")
    with _zip(raw.body) as zf:
        assert zf.namelist()[0] == "LICENSE" and zf.namelist()[-1] == "md5hashes.csv"


async def test_unknown_series_is_a_400(simulator: SimulatorHandle) -> None:
    v1 = await fetch(simulator.base_url("nbia-v1") + "/getImage", SeriesInstanceUID="1.2.3")
    assert (v1.status, v1.text) == (400, "Image with given SeriesInstanceUID,1.2.3, is not in "
                                         "public domain.")
    v4 = await fetch(simulator.base_url("nbia-v4") + "/getImage", SeriesInstanceUID="1.2.3")
    assert v4.status == 400 and v4.text.startswith("The user has not been granted the access")


async def test_v3_zip_has_only_dicom_and_an_image_count_header(
        simulator: SimulatorHandle) -> None:
    uid, truth = next(iter(simulator.ground_truth().items()))
    raw = await fetch(simulator.base_url("v3") + "/getImage", SeriesInstanceUID=uid)
    assert raw.headers["imageCount"] == str(truth.image_count)
    with _zip(raw.body) as zf:
        assert all(n.endswith(".dcm") for n in zf.namelist())


async def test_single_image(simulator: SimulatorHandle) -> None:
    uid, truth = next(iter(simulator.ground_truth().items()))
    sop, inst = next(iter(truth.instances.items()))
    base = simulator.base_url("nbia-v1")
    raw = await fetch(base + "/getSingleImage", SeriesInstanceUID=uid, SOPInstanceUID=sop)
    assert raw.status == 200
    assert raw.headers["Content-Type"] == "application/dicom"
    assert raw.headers["Content-Disposition"] == f"attachment; filename={sop}.dcm"
    assert hashlib.md5(raw.body).hexdigest() == inst.md5 and len(raw.body) == inst.size
    bad = await fetch(base + "/getSingleImage", SeriesInstanceUID=uid, SOPInstanceUID="1.2")
    assert bad.status == 500
    assert bad.text == "Server was not able to process your request\nnull"
    md5 = await fetch(base + "/getM5HashForImage", SOPInstanceUid=sop)
    assert md5.text == inst.md5
    v4md5 = await fetch(simulator.base_url("nbia-v4") + "/getMD5HashForImage",
                        SOPInstanceUID="1.2")
    assert (v4md5.status, v4md5.text) == (200, "")
