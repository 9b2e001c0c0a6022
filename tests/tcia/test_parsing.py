"""Tolerant record parsing: tricky bodies, numbers as strings, date formats, field renames."""

from datetime import UTC, date, datetime

import pytest

from mirror.domain import SeriesSize
from mirror.errors import ProtocolError
from mirror.tcia import dates, fields, parsing, rows

JSON = "application/json"


@pytest.mark.parametrize(("body", "ctype", "expected"), [
    (b"", "", []),
    (b"  \n", JSON, []),
    (b"[]", JSON, []),
    (b"[{}]", JSON, [{}]),
    (b'[{"LicenseURI":"http:\\/\\/x.org\\/a"}]', JSON, [{"LicenseURI": "http://x.org/a"}]),
    (b'{"Collection":"A"}', JSON, [{"Collection": "A"}]),  # a lone object is one record
    (b'\xef\xbb\xbf[{"a":1}]', JSON, [{"a": 1}]),  # UTF-8 BOM
    (b'"Filename","MD5Hash"\n"a.dcm","00"\n', "text/csv", [{"Filename": "a.dcm",
                                                           "MD5Hash": "00"}]),
])
def test_decode_records(body: bytes, ctype: str, expected: list) -> None:
    assert parsing.decode_records("getSeries", 200, ctype, body) == expected


@pytest.mark.parametrize(("body", "what"), [
    (b"<html><body>Bad Gateway</body></html>", "HTML"),
    (b"<!DOCTYPE html><html>maintenance</html>", "HTML"),
    (b'[{"a":1}', "malformed JSON"),
    (b"Server was not able to process your request", "malformed JSON"),
    (b"[1, 2]", "array of objects"),
    (b'"text"', "malformed JSON"),
])
def test_decode_records_rejects_non_data(body: bytes, what: str) -> None:
    with pytest.raises(ProtocolError, match=what) as info:
        parsing.decode_records("getSeries", 200, JSON, body)
    assert "getSeries: HTTP 200" in str(info.value)
    assert info.value.endpoint == "getSeries" and info.value.status == 200


@pytest.mark.parametrize(("value", "expected"), [
    (12, 12), (12.0, 12), ("12", 12), (" 12 ", 12), ("3000923.000000", 3000923),
    ("1.6357620E7", 16357620), ("1,024", 1024), (None, None), ("", None), ("n/a", None),
    (True, None), (float("nan"), None), ("inf", None), ([], None),
])
def test_to_int(value: object, expected: int | None) -> None:
    assert fields.to_int(value) == expected


@pytest.mark.parametrize(("value", "expected"), [
    ("2000-01-01 00:00:00.0", datetime(2000, 1, 1, tzinfo=UTC)),
    ("2021-04-05 13:14:15.123", datetime(2021, 4, 5, 13, 14, 15, 123000, tzinfo=UTC)),
    ("2021-04-05 13:14:15", datetime(2021, 4, 5, 13, 14, 15, tzinfo=UTC)),
    ("06-19-1990", datetime(1990, 6, 19, tzinfo=UTC)),  # v4 MM-DD-YYYY
    ("1990-06-19", datetime(1990, 6, 19, tzinfo=UTC)),
    ("1990/06/19", datetime(1990, 6, 19, tzinfo=UTC)),
    ("19900619", datetime(1990, 6, 19, tzinfo=UTC)),
    ("Wed Oct 19 00:00:00 EDT 2016", datetime(2016, 10, 19, tzinfo=UTC)),
    ("2024-05-01T10:00:00+02:00", datetime(2024, 5, 1, 8, 0, tzinfo=UTC)),
    ("13-45-2020", None),  # nonsense -> None, never a crash
    ("yesterday", None), ("", None), (None, None), (20200101, None),
])
def test_to_datetime(value: object, expected: datetime | None) -> None:
    assert dates.to_datetime(value) == expected


def test_value_list_skips_null_objects() -> None:
    records = [{}, {"BodyPartExamined": "ABDOMEN"}, {"BodyPartExamined": "CHEST"}]
    assert fields.value_list(records, "BodyPartExamined") == ["ABDOMEN", "CHEST"]


def test_value_list_accepts_a_single_other_key() -> None:
    assert fields.value_list([{"collection": "A"}], "Collection") == ["A"]


V1_SERIES = {
    "SeriesInstanceUID": "1.2.3", "StudyInstanceUID": "1.2", "Modality": "DX",
    "SeriesDate": "2000-01-01 00:00:00.0", "SeriesNumber": 3000923, "AnnotationsFlag": True,
    "Collection": "LIDC-IDRI", "PatientID": "LIDC-IDRI-0001", "ImageCount": 2,
    "TimeStamp": "2021-04-05 13:14:15.0", "FileSize": 16357620,
    "DateReleased": "2016-10-19 00:00:00.0", "Unknown": "kept in raw",
}
V4_SERIES = {
    "SeriesInstanceUID": "1.2.3", "StudyInstanceUID": "1.2", "Modality": "DX",
    "SeriesNumber": "3000923", "Collection": "LIDC-IDRI", "PatientID": "LIDC-IDRI-0001",
    "ImageCount": "2", "MaxSubmissionTimestamp": "04-05-2021", "FileSize": "16357620",
    "DataDescriptionURI": "https://doi.org/x", "DateReleased": "10-19-2016",
}
CONTENTS = {"SeriesInstanceUID": "1.2.3", "StudyInstanceUID": "1.2", "Collection": "LIDC-IDRI",
            "PatientID": "LIDC-IDRI-0001", "ImageCount": 2,
            "Date Released": "2016-10-19 00:00:00.0"}


@pytest.mark.parametrize("record", [V1_SERIES, V4_SERIES, CONTENTS])
def test_series_is_the_same_in_every_dialect(record: dict) -> None:
    series = rows.to_series(record)
    assert series is not None
    assert (series.series_uid, series.study_uid, series.patient_id, series.collection) == (
        "1.2.3", "1.2", "LIDC-IDRI-0001", "LIDC-IDRI")
    assert series.image_count == 2
    assert series.date_released == datetime(2016, 10, 19, tzinfo=UTC)
    assert series.raw == record


def test_series_timestamp_renames() -> None:
    assert rows.to_series(V1_SERIES).timestamp == datetime(2021, 4, 5, 13, 14, 15,
                                                              tzinfo=UTC)
    assert rows.to_series(V4_SERIES).timestamp == datetime(2021, 4, 5, tzinfo=UTC)
    assert rows.to_series(V4_SERIES).file_size == 16357620
    assert rows.to_series(V1_SERIES).series_number == 3000923


def test_series_without_uid_is_skipped_and_missing_keys_are_none() -> None:
    assert rows.to_series({"Collection": "A"}) is None
    bare = rows.to_series({"SeriesInstanceUID": "1.2"}, "C")
    assert bare.collection == "C" and bare.image_count is None and bare.timestamp is None


def test_patient_id_spellings() -> None:
    nbia = rows.to_patient({"PatientId": "P1", "Collection": "C"})
    legacy = rows.to_patient({"PatientID": "P1"}, "C")
    assert (nbia.patient_id, nbia.collection) == (legacy.patient_id, legacy.collection)
    assert rows.to_patient({}) is None


def test_study_dates_and_counts() -> None:
    v1 = rows.to_study({"StudyInstanceUID": "1.2", "StudyDate": "2000-01-01 00:00:00.0",
                           "PatientID": "P", "Collection": "C", "SeriesCount": 9})
    v4 = rows.to_study({"StudyInstanceUID": "1.2", "StudyDate": "01-01-2000",
                           "PatientID": "P", "SeriesCount": "9"}, "C")
    assert v1 == v4
    assert v1.study_date == date(2000, 1, 1) and v1.series_count == 9


@pytest.mark.parametrize(("records", "expected"), [
    ([{"TotalSizeInBytes": 16357620, "ObjectCount": 2}], SeriesSize(16357620, 2)),
    ([{"TotalSizeInBytes": "16357620.0", "ObjectCount": "2"}], SeriesSize(16357620, 2)),
    ([{}], SeriesSize(None, None)),
    ([], SeriesSize(None, None)),
])
def test_series_size(records: list, expected: SeriesSize) -> None:
    assert parsing.to_series_size(records) == expected


def test_snippet_is_short_and_single_line() -> None:
    text = parsing.snippet(b"line one\nline two " + b"x" * 1000)
    assert "\n" not in text and len(text) <= 303 and text.startswith("line one line two")
