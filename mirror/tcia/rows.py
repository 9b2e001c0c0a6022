"""Listing rows -> domain values: patients, studies and series, each checked on its own.

A series row that is unusable (a bad StudyInstanceUID, a NUL in PatientID, a number out
of range, a row of another collection) carries its ``problem`` and fails only its own
series; one that cannot even be keyed is a ``RejectedRow``. The raw row is kept as the
catalog's JSON column can hold it, and read back by :mod:`mirror.tcia.extras`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from mirror.domain import (
    RejectedRow,
    RemotePatient,
    RemoteSeries,
    RemoteStudy,
    Uid,
    listed_series,
    shown,
    storable,
)
from mirror.errors import InvalidUid
from mirror.tcia.dates import to_date, to_datetime
from mirror.tcia.fields import first, to_int, to_str

#: Sane ranges of listed numbers (the catalog's INTEGER and BIGINT columns).
INT32_MAX, INT64_MAX = 2**31 - 1, 2**63 - 1
#: Longest PatientID / Collection the catalog stores (its String(256) columns).
MAX_NAME_CHARS = 256


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
    if type(record) is dict and (text := _plain_json(record)) is not None:
        series = _plain_series(record, collection, text)
        if series is not None:
            return series
    return careful_series(record, collection)


class ListedRecord(dict[str, Any]):
    """The raw row of a plain listing row with its JSON text (:func:`_plain_json`'s), which
    the catalog stores (``mirror.catalog.bulk.json_text``) instead of making it again."""

    __slots__ = ("json_text",)
    json_text: str


def _plain_series(record: dict[str, Any], collection: str | None,
                  text: bytes) -> RemoteSeries | None:
    """:func:`careful_series` of a plain row (:func:`_plain_json`) whose fields all have the
    shape listings send (text, ints in range, nothing to report), 2x faster; None for
    anything else, which takes the careful path. Both UIDs still pass :class:`Uid`."""
    get = record.get
    if (series_uid := get("SeriesInstanceUID")) is None:
        series_uid = get("Series UID")
    if (study_uid := get("StudyInstanceUID")) is None:
        study_uid = get("Study UID")
    if type(series_uid) is not str or type(study_uid) is not str:
        return None
    listed = get("Collection")
    if listed is not None and type(listed) is not str:
        return None
    name = collection or listed or ""
    if collection and listed and listed.casefold() != collection.casefold():
        return None  # a problem to report: the careful path words it
    if len(name) > MAX_NAME_CHARS or (name is collection and _storable(name) != name):
        return None
    patient = first(record, "PatientID", "PatientId", "Subject ID")
    if (image_count := get("ImageCount")) is None:
        image_count = get("Number of Images")
    if (file_size := get("FileSize")) is None:
        file_size = get("File Size")
    if (number := get("SeriesNumber")) is None:
        number = get("Series Number")
    described = _either(get, "SeriesDescription", "Series Description")
    part, modality = _either(get, "BodyPartExamined", "Body Part Examined"), get("Modality")
    if not (_text_or_none(patient, MAX_NAME_CHARS) and _text_or_none(modality)
            and _text_or_none(described) and _text_or_none(part)
            and _int_or_none(image_count, INT32_MAX) and _int_or_none(file_size, INT64_MAX)
            and _int_or_none(number, INT32_MAX)):
        return None
    try:
        series_uid, study_uid = Uid(series_uid), _study_uid(study_uid)
    except InvalidUid:
        return None
    if (when := get("TimeStamp")) is None:
        when = get("MaxSubmissionTimestamp")
    if (released := get("DateReleased")) is None:
        released = get("Date Released")
    raw = ListedRecord(record)
    raw.json_text = text.decode()  # nothing changes a listed row afterwards
    return listed_series(
        series_uid, study_uid, patient or "", name, modality[:64] if modality else None,
        image_count, file_size, to_datetime(when), to_datetime(released), number,
        described or None, raw, part[:64] if part else None)


def _study_uid(text: str) -> Uid:
    """``Uid(text)``, the same one again for a row of the study of the row before (a
    listing is in study order). The same Uid for the same text: safe from any thread."""
    if text == (last := _LAST_STUDY[0]):
        return last
    _LAST_STUDY[0] = uid = Uid(text)
    return uid


_LAST_STUDY = [Uid("0")]


def _text_or_none(value: Any, limit: int | None = None) -> bool:
    return value is None or (type(value) is str and (limit is None or len(value) <= limit))


def _int_or_none(value: Any, top: int) -> bool:
    return value is None or (type(value) is int and 0 <= value <= top)


def careful_series(record: Mapping[str, Any],
                   collection: str | None = None) -> RemoteSeries | RejectedRow | None:
    """:func:`to_series` for any row, field by field (the reference of the fast path)."""
    get = record.get  # the dialects' two spellings of a field: _either(get, v4, v1)
    value = _either(get, "SeriesInstanceUID", "Series UID")
    if value is None:
        return None
    try:
        series_uid = Uid(to_str(value))
    except InvalidUid as exc:
        return RejectedRow(f"SeriesInstanceUID: {exc}")
    problems: list[str] = []
    listed = to_str(get("Collection"))
    if collection and listed and listed.casefold() != collection.casefold():
        problems.append(f"the listing of {shown(collection)} has a row of collection "
                        f"{shown(listed)}")
    return RemoteSeries(
        series_uid=series_uid,
        study_uid=_study_key(_either(get, "StudyInstanceUID", "Study UID"), problems),
        patient_id=_name(first(record, "PatientID", "PatientId", "Subject ID"), "PatientID",
                         problems),
        collection=_name(collection or listed, "Collection", problems),
        modality=_text(get("Modality"), 64),
        image_count=_bounded(_either(get, "ImageCount", "Number of Images"), "ImageCount",
                             INT32_MAX, problems),
        file_size=_bounded(_either(get, "FileSize", "File Size"), "FileSize", INT64_MAX,
                           problems),
        timestamp=to_datetime(_either(get, "TimeStamp", "MaxSubmissionTimestamp")),
        date_released=to_datetime(_either(get, "DateReleased", "Date Released")),
        series_number=_bounded(_either(get, "SeriesNumber", "Series Number"), "", INT32_MAX,
                               None),
        description=_text(_either(get, "SeriesDescription", "Series Description")),
        raw=storable_record(record),
        problem="; ".join(problems) or None,
        body_part=_text(_either(get, "BodyPartExamined", "Body Part Examined"), 64),
    )


def _either(get: Callable[[str], Any], key: str, other: str) -> Any:
    """``first(record, key, other)`` for the hot path: a 200,000-row listing calls it
    two million times."""
    value = get(key)
    return get(other) if value is None else value


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
    stored = _storable(text)
    if stored != text:
        problems.append(f"{what} {shown(text)} contains NUL or invalid characters")
    if len(stored) > MAX_NAME_CHARS:
        problems.append(f"{what} is longer than {MAX_NAME_CHARS} characters")
        stored = stored[:MAX_NAME_CHARS]
    return stored


def _text(value: Any, limit: int | None = None) -> str | None:
    text = to_str(value)
    return None if text is None else _storable(text)[:limit]


def _bounded(value: Any, what: str, top: int, problems: list[str] | None) -> int | None:
    """An int in ``0..top``; out of range is a problem of the row (or None if cosmetic)."""
    number = to_int(value)
    if number is None or 0 <= number <= top:
        return number
    if problems is not None:
        problems.append(f"{what} {shown(value)} is out of range (0..{top})")
    return None


def _storable(text: str) -> str:
    """:func:`mirror.domain.storable` without its per-character scan for plain text.

    Lone surrogates are the only code points UTF-8 cannot encode, so a text that is
    ASCII, or encodes, and has no NUL is returned as it is.
    """
    if "\x00" in text:
        return storable(text)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return storable(text)
    return text


def storable_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """The raw row as the catalog's JSON column can hold it (NUL, surrogates escaped)."""
    if _plain_json(record) is not None:
        return dict(record)
    return {storable(str(k)): _storable_value(v) for k, v in record.items()}


def _plain_json(record: Mapping[str, Any]) -> bytes | None:
    """*record*'s JSON text (orjson's) when no key or value of it (at any depth) holds a
    NUL or a surrogate and every key is text (the row is stored as it came), else None.

    orjson checks it all in one pass in C (~30x cheaper than a Python scan): it refuses
    lone surrogates, keys that are not text and integers beyond 64 bits, and writes NUL
    as ``\\u0000``. A text that spells that escape itself is not plain by this test, and
    takes the careful path, which gives the same result, more slowly.
    """
    try:
        text = orjson.dumps(record)
    except TypeError:  # orjson.JSONEncodeError
        return None
    return None if b"\\u0000" in text else text


def _storable_value(value: Any) -> Any:
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, dict):
        return storable_record(value)
    if isinstance(value, list):
        return [_storable_value(v) for v in value]
    return value
