"""The three TCIA dialects (v3, nbia-v1, nbia-v4): endpoint names, parameter names, dates.

Pure data and pure functions. Callers speak one canonical vocabulary (NBIA v1 endpoint
names, ``PatientID``, a ``since`` date meaning "released on or after"); this module turns
it into what each server expects (tcia-api.md sections 3 and 5).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from mirror.errors import UsageError

#: Canonical (NBIA v1) endpoint names every dialect is asked about.
CANONICAL = (
    "getCollectionValues", "getModalityValues", "getBodyPartValues", "getManufacturerValues",
    "getPatient", "getPatientByCollectionAndModality", "getPatientStudy", "getSeries",
    "getSeriesSize", "getSOPInstanceUIDs", "NewPatientsInCollection",
    "NewStudiesInPatientCollection", "getContentsByName", "getImage", "getSingleImage",
    "getImageWithMD5Hash", "getSeriesMetaData", "getUpdatedSeries", "getMD5Hierarchy",
)

#: Binary endpoints: no ``format`` parameter, the body is a ZIP or a DICOM file.
BINARY = frozenset({"getImage", "getSingleImage", "getImageWithMD5Hash"})


@dataclass(frozen=True)
class Dialect:
    name: str
    #: canonical name -> wire name; a canonical name missing here is not offered.
    endpoints: Mapping[str, str]
    #: (canonical endpoint, canonical param) -> wire param name, where they differ.
    param_renames: Mapping[tuple[str, str], str] = field(default_factory=dict)
    #: endpoints sent as POST with a form body instead of GET with a query string.
    post: frozenset[str] = frozenset()
    #: whether to add ``format=json`` to metadata calls (NBIA defaults to JSON anyway,
    #: and v4 rejects parameters it does not list, so only send it where it is needed).
    format_json: frozenset[str] = frozenset()
    date_param: str = "Date"
    date_format: str = "%Y/%m/%d"
    #: True when the New* endpoints compare ``>=``; False for strict ``>``.
    date_inclusive: bool = False
    updated_format: str | None = None
    #: endpoints served by another API version next to this one: canonical -> version
    #: directory (v4 never got getContentsByName; TCIA's own client calls /v1 for it).
    elsewhere: Mapping[str, str] = field(default_factory=dict)

    def supports(self, canonical: str) -> bool:
        return canonical in self.endpoints

    @property
    def has_md5(self) -> bool:
        return self.supports("getImageWithMD5Hash")


_COMMON = {name: name for name in CANONICAL if name != "getMD5Hierarchy"}  # v4 only
_METADATA = frozenset(n for n in CANONICAL if n not in BINARY)

V3 = Dialect(
    name="v3",
    endpoints={
        # No shared lists either: getContentsByName exists only on NBIA v1/v2
        # (tcia-api-v4.md section 8).
        **{n: n for n in CANONICAL if n not in (
            "getImageWithMD5Hash", "getSeriesMetaData", "getUpdatedSeries",
            "getContentsByName", "getMD5Hierarchy")},
        "getPatientByCollectionAndModality": "PatientsByModality",
    },
    # The legacy API documented format=json and R clients always sent it.
    format_json=_METADATA,
    date_param="Date",
    date_format="%Y-%m-%d",
    date_inclusive=False,  # unconfirmed: asking one day early only adds a harmless superset
)

#: The per-instance MD5 endpoint: NBIA only, misspelled on v1 (path and parameter).
MD5_ENDPOINT = "getM5HashForImage"

NBIA_V1 = Dialect(
    name="nbia-v1",
    endpoints={**_COMMON, MD5_ENDPOINT: "getM5HashForImage"},
    param_renames={("getPatient", "PatientID"): "PatientId",
                   (MD5_ENDPOINT, "SOPInstanceUID"): "SOPInstanceUid"},
    date_param="Date",
    date_format="%Y/%m/%d",
    date_inclusive=False,
    updated_format="%d/%m/%Y",  # v1 parses getUpdatedSeries' fromDate as dd/MM/yyyy
)

NBIA_V4 = Dialect(
    name="nbia-v4",
    endpoints={**_COMMON, "getSeriesMetaData": "getSeriesMetadata",
               MD5_ENDPOINT: "getMD5HashForImage", "getMD5Hierarchy": "getMD5Hierarchy"},
    param_renames={
        ("getPatient", "PatientID"): "PatientId",
        ("getSeriesMetaData", "SeriesInstanceUID"): "list",
    },
    post=frozenset({"getSeriesMetaData", "getMD5Hierarchy"}),
    elsewhere={"getContentsByName": "v1"},
    # v4 getSeriesMetadata answers CSV unless asked for JSON.
    format_json=frozenset({"getSeriesMetaData"}),
    date_param="fromDate",
    date_format="%m-%d-%Y",
    date_inclusive=True,
    updated_format="%m-%d-%Y",
)

DIALECTS: dict[str, Dialect] = {d.name: d for d in (V3, NBIA_V1, NBIA_V4)}


def get_dialect(api: str) -> Dialect:
    try:
        return DIALECTS[api]
    except KeyError:
        raise UsageError(f"unknown API dialect {api!r}; use one of "
                         f"{', '.join(DIALECTS)}") from None


def wire_name(dialect: Dialect, canonical: str) -> str:
    """The endpoint's name in *dialect*; a clear UsageError when it has none."""
    try:
        return dialect.endpoints[canonical]
    except KeyError:
        raise UsageError(f"the {dialect.name} API has no {canonical} endpoint") from None


def endpoint_url(dialect: Dialect, base_url: str, canonical: str, wire: str) -> str:
    """Where *wire* lives: under *base_url*, or under a sibling version directory."""
    base = base_url.rstrip("/")
    version = dialect.elsewhere.get(canonical)
    if version:
        head, sep, last = base.rpartition("/")
        if sep and re.fullmatch(r"v\d+", last):
            base = f"{head}/{version}"
    return f"{base}/{wire}"


def wire_params(dialect: Dialect, canonical: str,
                params: Mapping[str, str | None]) -> dict[str, str]:
    """Canonical parameters -> the dialect's names; None values are left out."""
    out: dict[str, str] = {}
    for key, value in params.items():
        if value is None:
            continue
        out[dialect.param_renames.get((canonical, key), key)] = value
    if canonical in dialect.format_json:
        out["format"] = "json"
    return out


def since_param(dialect: Dialect, since: date) -> tuple[str, str]:
    """``since`` ("released on or after this day") -> the New* endpoints' date parameter.

    A strict ``>`` server is asked for the day before, so series released on *since*
    itself are included.
    """
    day = _as_date(since)
    if not dialect.date_inclusive:
        day -= timedelta(days=1)
    return dialect.date_param, day.strftime(dialect.date_format)


def updated_since_param(dialect: Dialect, since: date) -> tuple[str, str]:
    """``since`` -> getUpdatedSeries' ``fromDate`` (strict ``>`` in v1 and v4)."""
    if dialect.updated_format is None or not dialect.supports("getUpdatedSeries"):
        raise UsageError(f"the {dialect.name} API has no getUpdatedSeries endpoint")
    day = _as_date(since) - timedelta(days=1)
    return "fromDate", day.strftime(dialect.updated_format)


def md5_hierarchy_form(*, collection: str | None, patient_id: str | None,
                       study_uid: str | None, series_uid: str | None) -> dict[str, str | None]:
    """getMD5Hierarchy's form for one level; UsageError when the level is ambiguous.

    The server evaluates series, study, patient, collection in turn and the last one
    given wins (Collection alone runs whenever PatientID is empty), so exactly one level
    is sent, plus Collection where the patient level needs it as its project.
    """
    levels = {"SeriesInstanceUID": series_uid, "StudyInstanceUID": study_uid,
              "PatientID": patient_id}
    named = [k for k, v in levels.items() if v]
    if len(named) > 1 or (not named and not collection):
        raise UsageError("md5_hierarchy: name exactly one of series_uid, study_uid, "
                         "patient_id (with collection) or collection")
    if patient_id and not collection:
        raise UsageError("md5_hierarchy: patient_id needs its collection")
    return {**levels, "Collection": collection if patient_id or not named else None}


def _as_date(value: date) -> date:
    # datetime is a date subclass whose strftime would still work, but subtracting a day
    # must happen on the calendar day, not on a time of day.
    return value.date() if isinstance(value, datetime) else value
