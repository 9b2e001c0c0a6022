"""metadata.csv rows: the Retriever's formats, from a catalog row (pure functions)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mirror.catalog.records import SeriesRow
from mirror.domain import SeriesState
from mirror.sync.metadata_csv import COLUMNS, decimal_size, render, row
from mirror.transfer.commit import write_atomic


@pytest.mark.parametrize(("n", "text"), [
    (None, ""), (0, "0 B"), (999, "999 B"), (163_310, "163.31 KB"), (4_340_000, "4.34 MB"),
    (117_840_000, "117.84 MB"), (12 * 10**12, "12.00 TB"), (5 * 10**15, "5000.00 TB"),
])
def test_decimal_size(n: int | None, text: str) -> None:
    assert decimal_size(n) == text


def _series(**changes: object) -> SeriesRow:
    base = dict(
        series_uid="1.2.3.4", study_uid="1.2.3", patient_id="HNSCC-01-0001",
        collection="HNSCC", modality="RTPLAN", image_count=1, file_size=163_310,
        remote_timestamp=None, date_released=None, series_number=1, description="NA",
        raw={"StudyDesc": "RT SIMULATION", "StudyDate": "12-05-1998",
             "Manufacturer": "ADAC", "ThirdPartyAnalysis": "NO",
             "DataDescriptionURI": "https://doi.org/10.7937/k9/tcia.2020.a8sh-7363"},
        discovered_at=datetime(2021, 9, 30, tzinfo=UTC), state=SeriesState.DONE, attempts=1,
        next_attempt_at=None, lease_owner=None, lease_expires_at=None, last_error=None,
        queue_reason=None, repair=False, needs_refetch=False,
        local_path="HNSCC/HNSCC-01-0001/1.2.3/1.2.3.4", local_bytes=163_310,
        local_instance_count=1,
        verified_at=datetime(2021, 9, 30, 21, 38, 59, 207_000, tzinfo=UTC),
        sop_class_uid="1.2.840.10008.5.1.4.1.1.481.5")
    base.update(changes)
    return SeriesRow(**base)  # type: ignore[arg-type]


def test_row_matches_the_retriever_shapes() -> None:
    values = dict(zip(COLUMNS, row(_series()), strict=True))
    assert values == {
        "Series UID": "1.2.3.4", "Collection": "HNSCC", "3rd Party Analysis": "NO",
        "Data Description URI": "https://doi.org/10.7937/k9/tcia.2020.a8sh-7363",
        "Subject ID": "HNSCC-01-0001", "Study UID": "1.2.3",
        "Study Description": "RT SIMULATION", "Study Date": "12-05-1998",
        "Series Description": "NA", "Manufacturer": "ADAC", "Modality": "RTPLAN",
        "SOP Class Name": "RT Plan Storage", "SOP Class UID": "1.2.840.10008.5.1.4.1.1.481.5",
        "Number of Images": "1", "File Size": "163.31 KB",
        "File Location": "./HNSCC/HNSCC-01-0001/1.2.3/1.2.3.4",
        "Download Timestamp": "2021-09-30T21:38:59.207"}


def test_v1_listing_fields_and_missing_values() -> None:
    raw = {"StudyDesc": "A, B", "StudyDate": "2015-05-27 17:12:21.0", "CollectionURI": "u"}
    values = dict(zip(COLUMNS, row(_series(raw=raw, sop_class_uid=None, verified_at=None)),
                      strict=True))
    assert values["Study Date"] == "05-27-2015" and values["Data Description URI"] == "u"
    assert values["SOP Class Name"] == values["Download Timestamp"] == ""
    text = render([row(_series(raw=raw))]).decode()
    assert '"A, B"' in text  # quoted, not split
    assert next(csv.DictReader(io.StringIO(text)))["Study Description"] == "A, B"


def test_write_atomic_replaces_whole_and_leaves_no_temp(tmp_path: Path) -> None:
    target, staging = tmp_path / "c" / "metadata.csv", tmp_path / ".staging"
    target.parent.mkdir()
    target.write_bytes(b"old")
    write_atomic(target, b"new", tmp_dir=staging)
    assert target.read_bytes() == b"new" and list(staging.iterdir()) == []


def test_sop_class_names_are_pydicoms_without_importing_it() -> None:
    import subprocess
    import sys

    from pydicom._uid_dict import UID_dictionary
    from pydicom.uid import UID

    from mirror.sync.metadata_csv import sop_class_name

    for uid in UID_dictionary:
        name = UID(uid).name
        assert sop_class_name(uid) == ("" if name == uid else name)
    assert sop_class_name("1.2.3.4") == "" and sop_class_name(None) == ""
    code = ("import sys; from mirror.sync.metadata_csv import sop_class_name as n; "
            "print(n('1.2.840.10008.5.1.4.1.1.2'), 'pydicom' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.split() == ["CT", "Image", "Storage", "False"]


def test_a_row_takes_a_sop_class_read_from_disk_when_the_catalog_has_none() -> None:
    values = dict(zip(COLUMNS, row(_series(sop_class_uid=None), "1.2.840.10008.5.1.4.1.1.2"),
                      strict=True))
    assert (values["SOP Class UID"], values["SOP Class Name"]) == (
        "1.2.840.10008.5.1.4.1.1.2", "CT Image Storage")
