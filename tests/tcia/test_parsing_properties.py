"""Property tests: any server data either parses into validated values or fails cleanly.

"Cleanly" means a domain error (ProtocolError, PermanentApiError) or a RejectedRow, never
another exception; and no value that parses ever leads to a path outside the root.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mirror.archive import layout
from mirror.catalog import bulk
from mirror.domain import PathName, RejectedRow, RemoteSeries, Uid
from mirror.errors import InvalidUid, PermanentApiError, ProtocolError
from mirror.tcia import dates, parsing
from mirror.tcia import rows as listing_rows

ROOT = Path("/archive")
HOSTILE_TEXT = ["../../../x", "/abs/x", "..", ".", "", "a/b", "..\\x", "1.2\x003", "\x00",
                "1." + "2" * 63, "1.2.", ".1.2", "1..2", "\uff11.\uff12", "\ud800", "\x1b[2J",
                "~", "P~0123456789ab", "null", " 1.2 ", "1.2\n", "\U0001d7d9.\U0001d7da",
                "1e30", "-1", "NaN"]
text = st.one_of(st.sampled_from(HOSTILE_TEXT), st.text(max_size=80),
                 st.text(alphabet="0123456789.", max_size=70))
scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                    st.floats(allow_nan=True, allow_infinity=True), text)
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=6)
FIELDS = ["SeriesInstanceUID", "Series UID", "StudyInstanceUID", "Study UID", "PatientID",
          "PatientId", "Subject ID", "Collection", "Modality", "ImageCount", "Number of Images",
          "FileSize", "File Size", "TimeStamp", "MaxSubmissionTimestamp", "DateReleased",
          "SeriesNumber", "SeriesDescription", "StudyDescription", "StudyDate", "StudyID"]
rows = st.dictionaries(st.one_of(st.sampled_from(FIELDS), st.text(max_size=8)), values,
                       max_size=12)
#: Mostly well-formed rows with one or two hostile fields: reaches the deeper branches.
near_valid_rows = st.fixed_dictionaries(
    {"SeriesInstanceUID": st.sampled_from(["1.2.3", "1.2.840.1"]),
     "StudyInstanceUID": st.sampled_from(["1.2", "1.2.840.2"]), "Collection": st.just("C")},
    optional={k: values for k in FIELDS[4:] if k != "Collection"})


def _storable(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" not in value and not any(0xD800 <= ord(c) <= 0xDFFF for c in value)
    if isinstance(value, dict):
        return all(_storable(k) and _storable(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_storable(v) for v in value)
    return True


def _check_series(record: dict[str, Any], collection: str | None) -> None:
    parsed = listing_rows.to_series(record, collection)
    if parsed is None or isinstance(parsed, RejectedRow):
        return
    assert isinstance(parsed, RemoteSeries)
    assert isinstance(parsed.series_uid, Uid)
    assert _storable(parsed.raw) and json.dumps(parsed.raw)
    for name in (parsed.patient_id, parsed.collection, parsed.description, parsed.modality):
        assert name is None or (_storable(name) and len(name) <= listing_rows.MAX_NAME_CHARS)
    if parsed.problem is not None:
        return
    assert isinstance(parsed.study_uid, Uid)
    assert parsed.image_count is None or 0 <= parsed.image_count <= listing_rows.INT32_MAX
    assert parsed.file_size is None or 0 <= parsed.file_size <= listing_rows.INT64_MAX
    info = layout.DescriptiveInfo(
        study_date=dates.to_date(record.get("StudyDate")), study_id=record.get("StudyID"),
        study_description=record.get("StudyDescription"), series_number=parsed.series_number,
        series_description=parsed.description)
    for kind in layout.LAYOUTS:
        path = layout.series_dir(ROOT, PathName(parsed.collection), PathName(parsed.patient_id),
                                 parsed.study_uid, parsed.series_uid, layout=kind,
                                 descriptive=info)
        assert layout.is_inside(ROOT, path)
        assert len(path.relative_to(ROOT).parts) == 4  # exactly four components, none ".."
        assert all(p not in (".", "..") and "/" not in p for p in path.relative_to(ROOT).parts)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(record=rows, collection=st.one_of(st.none(), st.sampled_from(["C", "c", "OTHER"])))
def test_any_listing_row_parses_to_validated_values_or_is_rejected(
        record: dict[str, Any], collection: str | None) -> None:
    _check_series(record, collection)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(record=near_valid_rows)
def test_near_valid_rows_never_escape(record: dict[str, Any]) -> None:
    _check_series(record, "C")


@given(uids=st.lists(st.one_of(text, values), max_size=6))
def test_sop_uid_answers_are_all_uids_or_refused(uids: list[Any]) -> None:
    records = [{"SOPInstanceUID": u} for u in uids]
    try:
        got = parsing.sop_uids(records)
    except PermanentApiError:
        return
    for uid in got:
        assert isinstance(uid, Uid)
        assert layout.is_inside(ROOT, layout.staging_part(ROOT, uid))


@given(value=st.one_of(text, values))
def test_uid_is_validated_or_refused(value: Any) -> None:
    try:
        uid = Uid(value)
    except InvalidUid:
        return
    assert len(uid) <= 64 and layout.UID_RE.fullmatch(uid)


@given(name=st.one_of(st.sampled_from(HOSTILE_TEXT), st.text()))
def test_path_names_are_one_safe_component(name: str) -> None:
    component = PathName(name)
    assert component not in ("", ".", "..") and "/" not in component and "\x00" not in component
    assert (ROOT / component).parent == ROOT


@given(body=st.one_of(st.binary(max_size=200), st.builds(
    lambda v: json.dumps(v).encode(), values)), ctype=st.sampled_from(
    ["application/json", "text/csv", "text/plain", ""]))
@example(body=b"\r\x00", ctype="text/csv")  # a bare CR in CSV once escaped as csv.Error
def test_any_body_decodes_to_records_or_protocol_error(body: bytes, ctype: str) -> None:
    try:
        records = parsing.decode_records("getSeries", 200, ctype, body)
    except ProtocolError as exc:
        assert "\x1b" not in str(exc)  # a snippet of the body is escaped
        return
    assert all(isinstance(r, dict) for r in records)


def _fields(parsed: object) -> object:
    """Everything a parsed row holds, ``raw`` and the UIDs' type included."""
    if not isinstance(parsed, RemoteSeries):
        return parsed
    return (dataclasses.astuple(parsed), parsed.raw, type(parsed.series_uid),
            type(parsed.study_uid))


#: Rows of the shape NBIA sends (the fast path's), with any field replaced by anything.
listing_like_rows = st.builds(lambda row, replaced: {**row, **replaced}, st.fixed_dictionaries(
    {"SeriesInstanceUID": st.sampled_from(["1.2.3", "1.2.840.1"]),
     "StudyInstanceUID": st.sampled_from(["1.2", "1.2.840.2"]),
     "Collection": st.sampled_from(["C", "c", "OTHER", ""]),
     "PatientID": st.sampled_from(["P1", "", "x" * 257]),
     "Modality": st.sampled_from(["CT", "", "M" * 70]), "ImageCount": st.just(105),
     "FileSize": st.just(54_000_000), "SeriesNumber": st.just(3),
     "MaxSubmissionTimestamp": st.just("03-15-2010"), "DateReleased": st.just("03-15-2010"),
     "SeriesDescription": st.just("0,OPA,GE"), "BodyPartExamined": st.just("CHEST")}),
    st.dictionaries(st.sampled_from(FIELDS), values, max_size=2))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(record=st.one_of(rows, near_valid_rows, listing_like_rows),
       collection=st.one_of(st.none(), st.sampled_from(["C", "c", "OTHER", "", "a\x00b"])))
def test_fast_path_parses_exactly_as_the_careful_one(record: dict[str, Any],
                                                     collection: str | None) -> None:
    assert (_fields(listing_rows.to_series(record, collection))
            == _fields(listing_rows.careful_series(record, collection)))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(record=st.one_of(rows, near_valid_rows, listing_like_rows),
       collection=st.one_of(st.none(), st.sampled_from(["C", "OTHER"])))
def test_the_json_text_a_listed_row_carries_is_what_the_catalog_writes_for_it(
        record: dict[str, Any], collection: str | None) -> None:
    parsed = listing_rows.to_series(record, collection)
    if isinstance(parsed, RemoteSeries) and isinstance(parsed.raw, listing_rows.ListedRecord):
        assert parsed.raw.json_text == bulk.json_text(dict(parsed.raw))
        assert parsed.raw == record
