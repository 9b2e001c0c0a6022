"""The simulator serves the generated dataset: listings, ZIPs and ground truth agree."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile

import pydicom

from mirror.simulator.testing import SimulatorHandle
from tests.simulator.conftest import fetch


async def test_collections_and_series_listing(simulator: SimulatorHandle) -> None:
    base = simulator.base_url("nbia-v1")
    raw = await fetch(base + "/getCollectionValues")
    assert raw.status == 200
    assert raw.body == b'[{"Collection":"SIM-LUNG"}]'
    assert simulator.collections() == ["SIM-LUNG"]
    series = json.loads((await fetch(base + "/getSeries", Collection="SIM-LUNG")).body)
    truth = simulator.ground_truth("SIM-LUNG")
    assert {s["SeriesInstanceUID"] for s in series} == set(truth)
    for row in series:
        t = truth[row["SeriesInstanceUID"]]
        assert (row["ImageCount"], row["FileSize"]) == (t.image_count, t.file_size)


async def test_get_image_streams_a_zip_matching_the_truth(simulator: SimulatorHandle) -> None:
    uid, truth = next(iter(simulator.ground_truth().items()))
    raw = await fetch(simulator.base_url("nbia-v1") + "/getImage", SeriesInstanceUID=uid)
    assert raw.status == 200
    assert raw.headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Length" not in raw.headers
    assert raw.headers["Content-Disposition"] == f'attachment; filename="{uid}.zip"'
    with zipfile.ZipFile(io.BytesIO(raw.body)) as zf:
        names = zf.namelist()
        assert names[0] == "LICENSE"
        assert names[1:] == [f"{n:08d}.dcm" for n in range(1, truth.image_count + 1)]
        md5s = {hashlib.md5(zf.read(n)).hexdigest() for n in names[1:]}
        ds = pydicom.dcmread(io.BytesIO(zf.read(names[1])))
    assert md5s == {i.md5 for i in truth.instances.values()}
    assert ds.SeriesInstanceUID == uid
    assert ds.SOPInstanceUID in truth.instances
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
