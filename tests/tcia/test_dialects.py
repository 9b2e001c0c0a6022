"""Dialect layer: endpoint names, parameter renames and the since-date mapping, as tables."""

from datetime import date, datetime

import pytest

from mirror.errors import UsageError
from mirror.tcia import dialects
from mirror.tcia.dialects import NBIA_V1, NBIA_V4, V3


@pytest.mark.parametrize(("dialect", "canonical", "wire"), [
    (V3, "getPatientByCollectionAndModality", "PatientsByModality"),
    (V3, "getSeries", "getSeries"),
    (NBIA_V1, "getPatientByCollectionAndModality", "getPatientByCollectionAndModality"),
    (NBIA_V1, "getContentsByName", "getContentsByName"),
    (NBIA_V1, "getSeriesMetaData", "getSeriesMetaData"),
    (NBIA_V4, "getSeriesMetaData", "getSeriesMetadata"),
    (NBIA_V4, "getImageWithMD5Hash", "getImageWithMD5Hash"),
    (NBIA_V4, "getMD5Hierarchy", "getMD5Hierarchy"),
])
def test_wire_names(dialect: dialects.Dialect, canonical: str, wire: str) -> None:
    assert dialects.wire_name(dialect, canonical) == wire


@pytest.mark.parametrize("canonical", ["getImageWithMD5Hash", "getSeriesMetaData",
                                       "getUpdatedSeries", "getContentsByName",
                                       "getMD5Hierarchy"])
def test_v3_lacks_nbia_only_endpoints(canonical: str) -> None:
    with pytest.raises(UsageError, match=f"v3 API has no {canonical}"):
        dialects.wire_name(V3, canonical)


def test_md5_hierarchy_is_v4_only_and_posted() -> None:
    with pytest.raises(UsageError, match="nbia-v1 API has no getMD5Hierarchy"):
        dialects.wire_name(NBIA_V1, "getMD5Hierarchy")
    assert "getMD5Hierarchy" in NBIA_V4.post


def test_md5_availability() -> None:
    assert not V3.has_md5 and NBIA_V1.has_md5 and NBIA_V4.has_md5


@pytest.mark.parametrize(("dialect", "canonical", "params", "expected"), [
    (NBIA_V1, "getPatient", {"Collection": "C", "PatientID": "P"},
     {"Collection": "C", "PatientId": "P"}),
    (NBIA_V4, "getPatient", {"PatientID": "P", "Collection": None}, {"PatientId": "P"}),
    (V3, "getPatient", {"PatientID": "P"}, {"PatientID": "P", "format": "json"}),
    (NBIA_V1, "getPatientStudy", {"PatientID": "P"}, {"PatientID": "P"}),
    (V3, "getImage", {"SeriesInstanceUID": "1.2"}, {"SeriesInstanceUID": "1.2"}),
    (NBIA_V4, "getSeriesMetaData", {"SeriesInstanceUID": "1.2"},
     {"list": "1.2", "format": "json"}),
    (NBIA_V1, "getSeriesMetaData", {"SeriesInstanceUID": "1.2"}, {"SeriesInstanceUID": "1.2"}),
])
def test_wire_params(dialect: dialects.Dialect, canonical: str, params: dict,
                     expected: dict) -> None:
    assert dialects.wire_params(dialect, canonical, params) == expected


@pytest.mark.parametrize(("dialect", "since", "expected"), [
    # nbia-v1 compares strictly (>), so it is asked for the day before.
    (NBIA_V1, date(2024, 3, 1), ("Date", "2024/02/29")),
    (NBIA_V1, date(2024, 1, 1), ("Date", "2023/12/31")),
    # nbia-v4 New* endpoints are inclusive (>=).
    (NBIA_V4, date(2024, 3, 1), ("fromDate", "03-01-2024")),
    # v3 semantics unknown: one day early is a harmless superset.
    (V3, date(2024, 3, 1), ("Date", "2024-02-29")),
    (NBIA_V4, datetime(2024, 3, 1, 23, 59), ("fromDate", "03-01-2024")),
    (NBIA_V1, datetime(2024, 3, 1, 0, 0), ("Date", "2024/02/29")),
])
def test_since_param(dialect: dialects.Dialect, since: date, expected: tuple) -> None:
    assert dialects.since_param(dialect, since) == expected


@pytest.mark.parametrize(("dialect", "since", "expected"), [
    (NBIA_V1, date(2024, 3, 10), ("fromDate", "09/03/2024")),  # dd/MM/yyyy, strict
    (NBIA_V4, date(2024, 3, 10), ("fromDate", "03-09-2024")),  # MM-DD-YYYY, strict
])
def test_updated_since_param(dialect: dialects.Dialect, since: date, expected: tuple) -> None:
    assert dialects.updated_since_param(dialect, since) == expected


def test_updated_series_is_not_in_v3() -> None:
    with pytest.raises(UsageError, match="getUpdatedSeries"):
        dialects.updated_since_param(V3, date(2024, 1, 1))


def test_unknown_dialect() -> None:
    with pytest.raises(UsageError, match="nbia-v9"):
        dialects.get_dialect("nbia-v9")


@pytest.mark.parametrize(("dialect", "base", "canonical", "expected"), [
    (NBIA_V4, "https://h/nbia-api/services/v4", "getContentsByName",
     "https://h/nbia-api/services/v1/getContentsByName"),
    (NBIA_V4, "https://h/nbia-api/services/v4/", "getSeries",
     "https://h/nbia-api/services/v4/getSeries"),
    (NBIA_V1, "https://h/nbia-api/services/v1", "getContentsByName",
     "https://h/nbia-api/services/v1/getContentsByName"),
    # a base URL without a version directory is used as it is
    (NBIA_V4, "http://127.0.0.1:8000/api", "getContentsByName",
     "http://127.0.0.1:8000/api/getContentsByName"),
])
def test_endpoint_url(dialect: dialects.Dialect, base: str, canonical: str,
                      expected: str) -> None:
    wire = dialects.wire_name(dialect, canonical)
    assert dialects.endpoint_url(dialect, base, canonical, wire) == expected
