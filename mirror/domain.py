"""Value types shared by every layer: remote records, series states and their transitions.

Server text becomes a path only through :class:`Uid` and :class:`PathName`, the one
validation point: their constructors are the only way to make one, and
:mod:`mirror.archive.layout` accepts nothing else. :func:`printable` makes server text safe to show.
"""

from __future__ import annotations

import enum
import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from mirror.errors import IllegalTransition, InvalidUid

#: A JSON document this program prints or serves (a sync summary, /healthz, the status
#: page's data): its values are whatever JSON holds and are read where they are used.
JsonObject = dict[str, Any]

#: DICOM UID syntax (PS3.5 §9.1); [0-9] rather than \d so that no non-ASCII digit passes.
UID_RE = re.compile(r"[0-9]+(?:\.[0-9]+)*")  # no capture: a listing checks 400,000
_UID_MATCH = UID_RE.fullmatch
UID_MAX_LEN = 64
#: Longest safe component in UTF-8 bytes (well below NAME_MAX = 255, leaving room for suffixes).
MAX_COMPONENT_BYTES = 100
_HASH_LEN = 12
#: A changed name always ends with this suffix and an unchanged one never does, so an
#: unchanged name cannot collide with a changed one; changed ones differ by their hash.
_SUFFIX_RE = re.compile(rf"~[0-9a-f]{{{_HASH_LEN}}}\Z")
#: Unicode categories that never go into a path: controls, surrogates (not encodable),
#: line and paragraph separators.
_BAD_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})
#: Shown escaped: controls (ESC, C1 CSI), format characters (bidi overrides), separators.
_UNSHOWN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


class Uid(str):
    r"""A DICOM UID that passed validation (``^[0-9]+(\.[0-9]+)*$``, at most 64 characters).

    ``Uid(text)`` raises :class:`InvalidUid` for anything else; a Uid is a str everywhere else.
    """

    __slots__ = ()

    def __new__(cls, value: object) -> Uid:
        if type(value) is not str and isinstance(value, Uid):
            return value
        if not isinstance(value, str) or len(value) > UID_MAX_LEN or not _UID_MATCH(value):
            raise InvalidUid(f"invalid DICOM UID {shown(value)}")
        return _new_str(cls, value)


_new_str = str.__new__


class PathName(str):
    """One path component made from server text (Collection, PatientID, descriptions).

    Ordinary names come back unchanged. Anything else (separators, NUL, controls, a
    leading dot, empty, too long) is cleaned, cut to :data:`MAX_COMPONENT_BYTES` and given a
    ``~<hash of the original>`` suffix, so two distinct names never map to the same
    component; the catalog keeps the original, which makes the mapping reversible.
    """

    __slots__ = ()

    def __new__(cls, name: object) -> PathName:
        if isinstance(name, PathName):
            return name
        if not isinstance(name, str):
            raise TypeError(f"a path name is made from a str, not {type(name).__name__}")
        return super().__new__(cls, safe_component(name))


def safe_component(name: str) -> str:
    """The text of ``PathName(name)`` (see there)."""
    cleaned = "".join(_safe_char(c) for c in name)
    stripped = cleaned.lstrip(".")
    cleaned = "_" * (len(cleaned) - len(stripped)) + stripped
    encoded = cleaned.encode("utf-8")
    if (cleaned == name and cleaned and len(encoded) <= MAX_COMPONENT_BYTES
            and not _SUFFIX_RE.search(name)):
        return name
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_LEN]
    room = MAX_COMPONENT_BYTES - _HASH_LEN - 1
    head = encoded[:room].decode("utf-8", "ignore")  # "ignore" drops a cut multibyte char
    return f"{head or '_'}~{digest}"


def _safe_char(c: str) -> str:
    if c in "/\\" or unicodedata.category(c) in _BAD_CATEGORIES:
        return "_"
    return c


def printable(text: str) -> str:
    """*text* with every control, format or unassigned character escaped (``\\x1b``).

    Everything shown to a user or written to a log line that may carry server text goes
    through this: an ESC sequence in a description must not reach a terminal.
    """
    if text.isprintable():
        return text
    return "".join(c if c == " " or unicodedata.category(c) not in _UNSHOWN_CATEGORIES
                   else _escape(c) for c in text)


def _escape(c: str) -> str:
    n = ord(c)
    return f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}" if n < 0x10000 else f"\\U{n:08x}"


def shown(value: object, limit: int = 120) -> str:
    """A short quoted, escaped rendering of a hostile value for error messages."""
    text = value if isinstance(value, str) else repr(value)
    text = printable(text)
    return "'" + (text if len(text) <= limit else text[:limit] + "...") + "'"


def storable(text: str) -> str:
    """*text* as the catalog can hold it: NUL and lone surrogates escaped (SQLite and
    Postgres refuse or mangle them); everything else unchanged."""
    if "\x00" not in text and not any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        return text
    return "".join(_escape(c) if c == "\x00" or 0xD800 <= ord(c) <= 0xDFFF else c
                   for c in text)


class SeriesState(enum.StrEnum):
    """Where a series is in its life; changed only through :func:`transition`."""

    QUEUED = "queued"  #: wanted: to be fetched (fully or repaired) when due
    FETCHING = "fetching"  #: leased by a worker that is downloading it
    DONE = "done"  #: verified and committed on disk
    FAILED = "failed"  #: failed for good (permanent error or attempts exhausted)
    RETIRED = "retired"  #: gone upstream; files kept unless on_remote_delete = "delete"


class Event(enum.StrEnum):
    """What happened to a series."""

    DISCOVER = "discover"  #: new or changed upstream, or found damaged: (re)queue
    CLAIM = "claim"  #: a worker took the lease
    COMPLETE = "complete"  #: verified and committed
    RETRY = "retry"  #: transient failure, lease lost or shutdown: back to the queue
    GIVE_UP = "give_up"  #: permanent failure
    RETIRE = "retire"  #: gone upstream


S, E = SeriesState, Event

#: (state, event) -> new state. Anything not in the table is illegal.
TRANSITIONS: dict[tuple[SeriesState, Event], SeriesState] = {
    (S.QUEUED, E.DISCOVER): S.QUEUED,
    (S.QUEUED, E.CLAIM): S.FETCHING,
    (S.QUEUED, E.RETIRE): S.RETIRED,
    (S.QUEUED, E.GIVE_UP): S.FAILED,
    (S.FETCHING, E.COMPLETE): S.DONE,
    (S.FETCHING, E.RETRY): S.QUEUED,
    (S.FETCHING, E.GIVE_UP): S.FAILED,
    (S.FETCHING, E.DISCOVER): S.FETCHING,
    (S.DONE, E.DISCOVER): S.QUEUED,
    (S.DONE, E.RETIRE): S.RETIRED,
    (S.FAILED, E.DISCOVER): S.QUEUED,
    (S.FAILED, E.RETIRE): S.RETIRED,
    (S.RETIRED, E.DISCOVER): S.QUEUED,
    (S.RETIRED, E.RETIRE): S.RETIRED,
}


def transition(state: SeriesState | str, event: Event | str) -> SeriesState:
    """Return the state after *event*; raise :class:`IllegalTransition` if forbidden."""
    try:
        return TRANSITIONS[(SeriesState(state), Event(event))]
    except (KeyError, ValueError) as exc:
        raise IllegalTransition(f"series cannot go from {state!s} on {event!s}") from exc


def sources_of(event: Event) -> tuple[SeriesState, ...]:
    """The states from which *event* is legal (used to build guarded SQL updates)."""
    return tuple(s for (s, e) in TRANSITIONS if e == event)


@dataclass(frozen=True, slots=True)
class RemotePatient:
    collection: str
    patient_id: str
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class RemoteStudy:
    collection: str
    patient_id: str
    study_uid: str
    study_date: date | None = None
    series_count: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class RemoteSeries:
    """One row of getSeries, normalised across dialects (raw fields kept for provenance)."""

    series_uid: str
    study_uid: str
    patient_id: str
    collection: str
    modality: str | None = None
    image_count: int | None = None
    file_size: int | None = None
    timestamp: datetime | None = None  # TimeStamp (v1) / MaxSubmissionTimestamp (v4)
    date_released: datetime | None = None
    series_number: int | None = None
    description: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    body_part: str | None = None  # BodyPartExamined: used by [sync] body_parts filters
    #: Why this row cannot be fetched (bad StudyInstanceUID, number out of range, ...):
    #: the series is recorded as failed with this reason; None for a usable row.
    problem: str | None = None


_SERIES_FIELDS = ("series_uid", "study_uid", "patient_id", "collection", "modality",
                  "image_count", "file_size", "timestamp", "date_released", "series_number",
                  "description", "raw", "body_part", "problem")
assert tuple(RemoteSeries.__dataclass_fields__) == _SERIES_FIELDS, "update listed_series"
(_set_uid, _set_study, _set_patient, _set_collection, _set_modality, _set_images, _set_size,
 _set_timestamp, _set_released, _set_number, _set_description, _set_raw, _set_body_part,
 _set_problem) = (getattr(RemoteSeries, name).__set__ for name in _SERIES_FIELDS)


def listed_series(series_uid: Uid, study_uid: Uid, patient_id: str, collection: str,
                  modality: str | None, image_count: int | None, file_size: int | None,
                  timestamp: datetime | None, date_released: datetime | None,
                  series_number: int | None, description: str | None, raw: dict[str, Any],
                  body_part: str | None) -> RemoteSeries:
    """``RemoteSeries(...)`` of a usable listing row (no ``problem``), every field given:
    the same value, made without the frozen ``__init__``'s per-field ``object.__setattr__``
    (a 200,000-series listing makes 200,000)."""
    series = _new_object(RemoteSeries)
    _set_uid(series, series_uid)
    _set_study(series, study_uid)
    _set_patient(series, patient_id)
    _set_collection(series, collection)
    _set_modality(series, modality)
    _set_images(series, image_count)
    _set_size(series, file_size)
    _set_timestamp(series, timestamp)
    _set_released(series, date_released)
    _set_number(series, series_number)
    _set_description(series, description)
    _set_raw(series, raw)
    _set_body_part(series, body_part)
    _set_problem(series, None)
    return series


_new_object = object.__new__


@dataclass(frozen=True, slots=True)
class RejectedRow:
    """A listing row that cannot even be keyed (no valid SeriesInstanceUID): skipped."""

    reason: str


@dataclass(frozen=True, slots=True)
class SeriesSize:
    total_bytes: int | None
    object_count: int | None


@dataclass(frozen=True, slots=True)
class InstanceRecord:
    """One stored DICOM file of a committed series."""

    sop_uid: str
    path: str  # relative to the archive root
    size: int
    md5: str
    #: the server's per-image MD5 string where it is not exactly ``md5`` ("" = none)
    server_md5: str | None = None
