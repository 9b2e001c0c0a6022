"""Tolerant decoding of TCIA bodies and records into the typed model of mirror.domain.

Empty bodies, ``[{}]``, missing keys, numbers sent as strings, unknown fields and the
dialects' date formats and field renames are all normal; only a body that is not data at
all (bad JSON, an HTML page) is an error, raised as ProtocolError naming the endpoint.
UIDs leave here as validated :class:`~mirror.domain.Uid` values; a series row that is
unusable carries its ``problem``, one that cannot even be keyed is a ``RejectedRow``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from mirror.domain import (
    RejectedRow,
    RemotePatient,
    RemoteSeries,
    RemoteStudy,
    SeriesSize,
    Uid,
    printable,
    shown,
    storable,
)
from mirror.errors import InvalidUid, PermanentApiError, ProtocolError
from mirror.merkle import is_stored_md5
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
#: Sane ranges of listed numbers (the catalog's INTEGER and BIGINT columns).
INT32_MAX, INT64_MAX = 2**31 - 1, 2**63 - 1
#: Longest PatientID / Collection the catalog stores (its String(256) columns).
MAX_NAME_CHARS = 256
#: java.util.Date.toString(): "Wed Oct 19 00:00:00 EDT 2016" -> drop the zone name.
_JAVA_DATE_ZONE = re.compile(r"^(\w{3} \w{3} \d{1,2} \d{2}:\d{2}:\d{2}) [A-Za-z+\-:0-9]+ (\d{4})$")


def snippet(body: bytes | str, limit: int = 300) -> str:
    """A short, single-line excerpt of a server body for error messages."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = printable(" ".join(text.split()))  # a body may carry terminal escapes
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


def to_series(record: Mapping[str, Any],
              collection: str | None = None) -> RemoteSeries | RejectedRow | None:
    """One getSeries row; None without a SeriesInstanceUID, RejectedRow when it is invalid.

    Any other bad field (StudyInstanceUID, a NUL in PatientID, a number out of range, a
    row of another *collection* than the one listed) gives a series with a ``problem``:
    it is recorded as failed, and the rest of the listing goes on.
    """
    value = first(record, "SeriesInstanceUID", "Series UID")
    if value is None:
        return None
    try:
        series_uid = Uid(to_str(value))
    except InvalidUid as exc:
        return RejectedRow(f"SeriesInstanceUID: {exc}")
    problems: list[str] = []
    listed = to_str(record.get("Collection"))
    if collection and listed and listed.casefold() != collection.casefold():
        problems.append(f"the listing of {shown(collection)} has a row of collection "
                        f"{shown(listed)}")
    return RemoteSeries(
        series_uid=series_uid,
        study_uid=_study_key(first(record, "StudyInstanceUID", "Study UID"), problems),
        patient_id=_name(first(record, "PatientID", "PatientId", "Subject ID"), "PatientID",
                         problems),
        collection=_name(collection or listed, "Collection", problems),
        modality=_text(record.get("Modality"), 64),
        image_count=_bounded(first(record, "ImageCount", "Number of Images"), "ImageCount",
                             INT32_MAX, problems),
        file_size=_bounded(first(record, "FileSize", "File Size"), "FileSize", INT64_MAX,
                           problems),
        timestamp=to_datetime(first(record, "TimeStamp", "MaxSubmissionTimestamp")),
        date_released=to_datetime(first(record, "DateReleased", "Date Released")),
        series_number=_bounded(first(record, "SeriesNumber", "Series Number"), "", INT32_MAX,
                               None),
        description=_text(first(record, "SeriesDescription", "Series Description")),
        raw=storable_record(record),
        problem="; ".join(problems) or None,
        body_part=_text(first(record, "BodyPartExamined", "Body Part Examined"), 64),
    )


def _study_key(value: Any, problems: list[str]) -> str:
    """The StudyInstanceUID, or for a bad one a stable placeholder key (never a path)."""
    try:
        return Uid(to_str(value))
    except InvalidUid as exc:
        problems.append(f"StudyInstanceUID: {exc}")
        text = value if isinstance(value, str) else repr(value)
        digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:24]
        return f"invalid-{digest}"


def _name(value: Any, what: str, problems: list[str]) -> str:
    """A PatientID or Collection as the catalog can store it; NUL, lone surrogates or an
    over-long name are a problem of the row (any other text is made safe by PathName)."""
    text = to_str(value) or ""
    stored = storable(text)
    if stored != text:
        problems.append(f"{what} {shown(text)} contains NUL or invalid characters")
    if len(stored) > MAX_NAME_CHARS:
        problems.append(f"{what} is longer than {MAX_NAME_CHARS} characters")
        stored = stored[:MAX_NAME_CHARS]
    return stored


def _text(value: Any, limit: int | None = None) -> str | None:
    text = to_str(value)
    return None if text is None else storable(text)[:limit]


def _bounded(value: Any, what: str, top: int, problems: list[str] | None) -> int | None:
    """An int in ``0..top``; out of range is a problem of the row (or None if cosmetic)."""
    number = to_int(value)
    if number is None or 0 <= number <= top:
        return number
    if problems is not None:
        problems.append(f"{what} {shown(value)} is out of range (0..{top})")
    return None


def storable_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """The raw row as the catalog's JSON column can hold it (NUL, surrogates escaped)."""
    return {storable(str(k)): _storable_value(v) for k, v in record.items()}


def _storable_value(value: Any) -> Any:
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, dict):
        return storable_record(value)
    if isinstance(value, list):
        return [_storable_value(v) for v in value]
    return value


def to_series_size(records: list[dict[str, Any]]) -> SeriesSize:
    """``[{"TotalSizeInBytes": n, "ObjectCount": m}]``; ``[{}]`` or empty -> unknown."""
    if not records:
        return SeriesSize(None, None)
    record = records[0]
    return SeriesSize(total_bytes=to_int(record.get("TotalSizeInBytes")),
                      object_count=to_int(record.get("ObjectCount")))


def md5_text(body: bytes) -> str | None:
    """A getMD5HashForImage answer as the server stores it, or None when empty or malformed.

    Stored values may lack leading zeros (CTP) and are kept as sent, since the server's
    MD5 hierarchy hashes them as stored; compare them with ``mirror.merkle.md5_equal``.
    """
    text = body.decode("ascii", "replace").strip()
    return text if is_stored_md5(text) else None


def sop_uids(records: Iterable[Mapping[str, Any]]) -> list[Uid]:
    """getSOPInstanceUIDs -> validated UIDs; one malformed UID refuses the whole answer
    (PermanentApiError: the series is then fetched as a ZIP, named by its DICOM headers)."""
    try:
        return [Uid(text) for text in value_list(records, "SOPInstanceUID")]
    except InvalidUid as exc:
        raise PermanentApiError(f"getSOPInstanceUIDs: {exc}",
                                endpoint="getSOPInstanceUIDs") from None


@dataclass(frozen=True, slots=True)
class ListingExtras:
    """Listing fields beyond :class:`RemoteSeries`, read back from its ``raw`` record
    (for metadata.csv); every dialect's spelling is tried."""

    study_description: str | None
    study_date: date | None
    manufacturer: str | None
    third_party: str | None
    data_description_uri: str | None


def listing_extras(raw: Mapping[str, Any]) -> ListingExtras:
    return ListingExtras(
        study_description=to_str(first(raw, "StudyDesc", "StudyDescription",
                                        "Study Description")),
        study_date=to_date(first(raw, "StudyDate", "Study Date")),
        manufacturer=to_str(raw.get("Manufacturer")),
        third_party=to_str(first(raw, "ThirdPartyAnalysis", "3rd Party Analysis")),
        data_description_uri=to_str(first(raw, "DataDescriptionURI", "CollectionURI",
                                          "Data Description URI")),
    )


def md5_hierarchy_text(body: bytes) -> str:
    """A getMD5Hierarchy answer: ``""`` (nothing known) or the bare hash.

    The server renders ``%032x`` (32 lowercase hex digits); anything else that is not
    empty is refused, so an HTML error page or a JSON-quoted value never passes as a hash.
    """
    text = body.decode("ascii", "replace")
    if re.fullmatch(r"[0-9a-f]{1,32}", text) or text == "":
        return text
    raise ProtocolError(f"getMD5Hierarchy: not an MD5 hash: {snippet(body, 80)!r}",
                        endpoint="getMD5Hierarchy", body=snippet(body))
