"""<Collection>/metadata.csv: the NBIA Data Retriever's columns, one row per mirrored series."""

from __future__ import annotations

import csv
import io
import re
from datetime import date
from pathlib import Path
from typing import Any

import pydicom
import pytest

from tests.e2e.harness import Mirror, write_mirror

pytestmark = pytest.mark.slow

#: Copied from a metadata.csv the NBIA Data Retriever wrote (not from our module), so the
#: test fails if our header drifts from the Retriever's.
RETRIEVER_HEADER = ("Series UID,Collection,3rd Party Analysis,Data Description URI,Subject ID,"
                    "Study UID,Study Description,Study Date,Series Description,Manufacturer,"
                    "Modality,SOP Class Name,SOP Class UID,Number of Images,File Size,"
                    "File Location,Download Timestamp")


def _read(path: Path) -> tuple[str, list[dict[str, str]]]:
    text = path.read_text(encoding="utf-8")
    return text.split("\n", 1)[0], list(csv.DictReader(io.StringIO(text)))


def _check_rows(mirror: Mirror, collection: str, rows: list[dict[str, str]],
                truth: dict[str, Any]) -> None:
    assert {r["Series UID"] for r in rows} == {u for u, s in truth.items()
                                              if s.collection == collection}
    for r in rows:
        t = truth[r["Series UID"]]
        assert (r["Collection"], r["Subject ID"], r["Study UID"]) == (
            collection, t.patient_id, t.study_uid)
        assert r["Number of Images"] == str(t.image_count)
        assert re.fullmatch(r"\d+(\.\d\d)? (B|KB|MB|GB)", r["File Size"]), r["File Size"]
        assert re.fullmatch(r"\d\d-\d\d-\d{4}", r["Study Date"]), r["Study Date"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}", r["Download Timestamp"])
        location = r["File Location"]
        assert location.startswith(f"./{collection}/{t.patient_id}/")
        series_dir = mirror.root / location[2:]
        files = sorted(series_dir.glob("*.dcm"))
        assert len(files) == t.image_count
        ds = pydicom.dcmread(files[0], stop_before_pixels=True)
        assert ds.SeriesInstanceUID == r["Series UID"]
        assert r["SOP Class UID"] == ds.SOPClassUID
        assert r["SOP Class Name"] == ds.SOPClassUID.name
        assert r["Modality"] == ds.Modality


@pytest.mark.parametrize("layout", ["uid", "descriptive"])
def test_metadata_csv_per_collection(tmp_path: Path, simulator: Any, catalog_url: str,
                                     layout: str) -> None:
    mirror = write_mirror(tmp_path, base_url=simulator.base_url("nbia-v4"), api="nbia-v4",
                          collections=simulator.collections(), catalog_url=catalog_url,
                          layout=layout)
    mirror.sync()
    truth = simulator.ground_truth()
    for collection in simulator.collections():
        path = mirror.root / collection / "metadata.csv"
        header, rows = _read(path)
        assert header == RETRIEVER_HEADER
        _check_rows(mirror, collection, rows, truth)

    # a sync that changes nothing leaves the file alone; one that adds a series rewrites it
    collection = simulator.collections()[0]
    path = mirror.root / collection / "metadata.csv"
    before = path.stat().st_ino
    mirror.sync()
    assert path.stat().st_ino == before
    release = simulator.publish_release(date.today(), new_series=1, collection=collection)
    mirror.sync()
    assert path.stat().st_ino != before
    _, rows = _read(path)
    truth = simulator.ground_truth()
    assert set(release.new_series_uids) <= {r["Series UID"] for r in rows}
    _check_rows(mirror, collection, rows, truth)
    leftovers = [p for p in mirror.root.rglob("*metadata.csv*") if p.name != "metadata.csv"]
    assert leftovers == []  # no temporary file left behind
