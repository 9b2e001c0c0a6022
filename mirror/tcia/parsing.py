"""Tolerant decoding of TCIA bodies and records into the typed model of mirror.domain.

Empty bodies, ``[{}]``, missing keys, numbers sent as strings, unknown fields and the
dialects' date formats and field renames are all normal; only a body that is not data at
all (bad JSON, an HTML page) is an error, raised as ProtocolError naming the endpoint.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any

from mirror.domain import RemotePatient, RemoteSeries, RemoteStudy, SeriesSize
from mirror.errors import ProtocolError
from mirror.tcia.jsonstream import JsonArrayError, parse_array

_DATETIME_FORMATS = (
    "%Y-%m-%d %H:%M:%S.%f",  # NBIA v1/v2 java.sql.Timestamp: "2000-01-01 00:00:00.0"
    "%Y-%m-%d %H:%M:%S",
    "%m-%d-%Y",  # NBIA v4 date_format(x, '%m-%d-%Y')
    "%Y-%m-%d",  # java.sql.Date, legacy v3
    "%Y/%m/%d",
    "%m/%d/%Y",
    "%Y%m%d",  # DICOM DA
    "%a %b %d %H:%M:%S %Y",  # java.util.Date.toString() once its zone is removed
)
#: java.util.Date.toString(): "Wed Oct 19 00:00:00 EDT 2016" -> drop the zone name.
_JAVA_DATE_ZONE = re.compile(r"^(\w{3} \w{3} \d{1,2} \d{2}:\d{2}:\d{2}) [A-Za-z+\-:0-9]+ (\d{4})$")


def snippet(body: bytes | str, limit: int = 300) -> str:
    """A short, single-line excerpt of a server body for error messages."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


def looks_like_html(body: bytes) -> bool:
    head = body.lstrip()[:64].lower()
    return head.startswith((b"<!doctype", b"<html", b"<head", b"<body", b"<p", b"<?xml"))


def decode_records(endpoint: str, status: int, content_type: str,
                   body: bytes) -> list[dict[str, Any]]:
    """A whole response body -> list of records; empty body -> []."""
    if not body.strip():
        return []
    where = f"{endpoint}: HTTP {status}"
    if looks_like_html(body):
        raise ProtocolError(f"{where}: expected JSON, got an HTML/XML page: {snippet(body)}",
                            endpoint=endpoint, status=status, body=snippet(body))
    if "csv" in content_type.lower():
        return _decode_csv(body)
    try:
        records = parse_array(body)
    except JsonArrayError:
        records = _decode_other_json(body)
        if records is None:
            raise ProtocolError(f"{where}: malformed JSON body: {snippet(body)}",
                                endpoint=endpoint, status=status,
                                body=snippet(body)) from None
    if not all(isinstance(r, dict) for r in records):
        raise ProtocolError(f"{where}: expected a JSON array of objects: {snippet(body)}",
                            endpoint=endpoint, status=status, body=snippet(body))
    return records


def _decode_other_json(body: bytes) -> list[Any] | None:
    """A lone object is one record; an array of non-objects is rejected by the caller."""
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(value, dict):
        return [value]
    return value if isinstance(value, list) else None


def _decode_csv(body: bytes) -> list[dict[str, Any]]:
    text = body.decode("utf-8-sig", "replace")
    return [dict(row) for row in csv.DictReader(io.StringIO(text))]


def to_int(value: Any) -> int | None:
    """``12``, ``12.0``, ``"12"``, ``"3000923.000000"`` -> int; anything else -> None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) else None
    if isinstance(value, str):
        text = value.strip().replace(",", "")
        try:
            return int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                return None
            return int(number) if math.isfinite(number) else None
    return None


def to_datetime(value: Any) -> datetime | None:
    """Any of the dialects' date strings -> datetime (UTC-tagged wall clock), else None.

    The server's time zone is unknown (NBIA uses its JVM/MySQL local zone), so the wall
    clock value is kept and tagged UTC to make comparisons with aware datetimes work.
    """
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if (fast := _fast_datetime(text)) is not None:
        return fast
    java = _JAVA_DATE_ZONE.match(text)
    if java:
        text = f"{java.group(1)} {java.group(2)}"
    for fmt in _DATETIME_FORMATS:
        try:
            parsed = datetime.strptime(text, fmt)
        except ValueError:
            continue
        return parsed.replace(tzinfo=UTC)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _fast_datetime(text: str) -> datetime | None:
    """The two shapes listings are made of, without strptime's retries (None: not these).

    NBIA v4 ``MM-DD-YYYY`` and v1 ``YYYY-MM-DD HH:MM:SS[.f]``: a 200,000-series listing
    has 400,000 of them, and trying the format list in order cost a third of discovery.
    Gives exactly what the matching ``_DATETIME_FORMATS`` entry gives, or None.
    """
    try:
        if len(text) == 10 and text[2] == "-" and text[5] == "-" and text.isascii():
            if text[:2].isdigit() and text[3:5].isdigit() and text[6:].isdigit():
                return datetime(int(text[6:]), int(text[:2]), int(text[3:5]), tzinfo=UTC)
        elif (19 <= len(text) <= 26 and text[4] == "-" and text[7] == "-" and text[10] == " "
              and text[13] == ":" and text[16] == ":" and text.isascii()
              and (len(text) == 19 or text[19] == ".")):
            digits = text[:4] + text[5:7] + text[8:10] + text[11:13] + text[14:16] + text[17:19]
            fraction = text[20:]
            if digits.isdigit() and (len(text) == 19 or (fraction and fraction.isdigit())):
                return datetime(int(text[:4]), int(text[5:7]), int(text[8:10]),
                                int(text[11:13]), int(text[14:16]), int(text[17:19]),
                                int(fraction.ljust(6, "0")) if fraction else 0, tzinfo=UTC)
    except ValueError:  # e.g. month 13: the slow path decides
        return None
    return None


def to_date(value: Any) -> date | None:
    parsed = to_datetime(value)
    return parsed.date() if parsed else None


def to_str(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value)
    return text if text else None


def first(record: Mapping[str, Any], *keys: str) -> Any:
    """The value of the first key present (dialects rename fields)."""
    for key in keys:
        if record.get(key) is not None:
            return record[key]
    return None


def value_list(records: Iterable[Mapping[str, Any]], key: str) -> list[str]:
    """Single-column endpoints: ``[{}, {"Modality": "CT"}]`` -> ``["CT"]``.

    ``{}`` stands for a NULL value and is skipped; a one-key record under another name
    (an undocumented legacy spelling) still counts.
    """
    out: list[str] = []
    for record in records:
        value = record.get(key)
        if value is None and len(record) == 1:
            value = next(iter(record.values()))
        text = to_str(value)
        if text is not None:
            out.append(text)
    return out


def to_patient(record: Mapping[str, Any], collection: str | None = None) -> RemotePatient | None:
    patient_id = to_str(first(record, "PatientID", "PatientId"))
    if patient_id is None:
        return None
    coll = to_str(record.get("Collection")) or collection or ""
    return RemotePatient(collection=coll, patient_id=patient_id, raw=dict(record))


def to_study(record: Mapping[str, Any], collection: str | None = None) -> RemoteStudy | None:
    study_uid = to_str(record.get("StudyInstanceUID"))
    if study_uid is None:
        return None
    return RemoteStudy(
        collection=to_str(record.get("Collection")) or collection or "",
        patient_id=to_str(first(record, "PatientID", "PatientId")) or "",
        study_uid=study_uid,
        study_date=to_date(record.get("StudyDate")),
        series_count=to_int(record.get("SeriesCount")),
        raw=dict(record),
    )


def to_series(record: Mapping[str, Any], collection: str | None = None) -> RemoteSeries | None:
    series_uid = to_str(first(record, "SeriesInstanceUID", "Series UID"))
    if series_uid is None:
        return None
    return RemoteSeries(
        series_uid=series_uid,
        study_uid=to_str(first(record, "StudyInstanceUID", "Study UID")) or "",
        patient_id=to_str(first(record, "PatientID", "PatientId", "Subject ID")) or "",
        collection=to_str(record.get("Collection")) or collection or "",
        modality=to_str(record.get("Modality")),
        image_count=to_int(first(record, "ImageCount", "Number of Images")),
        file_size=to_int(first(record, "FileSize", "File Size")),
        timestamp=to_datetime(first(record, "TimeStamp", "MaxSubmissionTimestamp")),
        date_released=to_datetime(first(record, "DateReleased", "Date Released")),
        series_number=to_int(first(record, "SeriesNumber", "Series Number")),
        description=to_str(first(record, "SeriesDescription", "Series Description")),
        raw=dict(record),
    )


def to_series_size(records: list[dict[str, Any]]) -> SeriesSize:
    """``[{"TotalSizeInBytes": n, "ObjectCount": m}]``; ``[{}]`` or empty -> unknown."""
    if not records:
        return SeriesSize(None, None)
    record = records[0]
    return SeriesSize(total_bytes=to_int(record.get("TotalSizeInBytes")),
                      object_count=to_int(record.get("ObjectCount")))


def md5_text(body: bytes) -> str | None:
    """A text/plain MD5 answer: 32 hex digits, or None when empty or malformed."""
    text = body.decode("ascii", "replace").strip().lower()
    return text if len(text) == 32 and all(c in "0123456789abcdef" for c in text) else None


def sop_uids(records: Iterable[Mapping[str, Any]]) -> list[str]:
    return value_list(records, "SOPInstanceUID")
