"""Metadata endpoints of the three dialects: parameters, required-parameter texts, results.

An endpoint is a pure function of (dialect, catalog snapshot, parameters) to a reply;
the route layer adds auth, faults and statistics around it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date

from mirror.simulator import queries as q
from mirror.simulator import tables as t
from mirror.simulator.catalog import Catalog
from mirror.simulator.replies import EMPTY, SERVER_ERROR, AnyReply, Reply
from mirror.simulator.tables import V1, V3, V4
from mirror.simulator.wire import Table, render

Params = dict[str, str]
Run = Callable[[str, Catalog, Params], AnyReply]


@dataclass(frozen=True)
class Endpoint:
    name: str
    run: Run
    params: tuple[str, ...]  #: everything v4 accepts (it rejects the rest)
    required: tuple[str, ...] = ()
    missing: str = ""  #: the 400 text when a required parameter is absent
    image: bool = False  #: needs a Bearer token when the simulator runs with --auth
    methods: tuple[str, ...] = ("GET",)
    #: v4's 400 text names "query" or "form" parameters, as the resource reads them.
    param_kind: str = "query"
    #: JAX-RS @Produces(application/json): an Accept that rules it out gets 406.
    produces_json: bool = False


def table_reply(dialect: str, table: Table, fmt: str | None) -> Reply:
    if not table.rows:
        # NBIA: Response.ok().build(). Legacy v3 answered "[]" (reference §2.2).
        if dialect == V3 and (fmt or "json").lower() == "json":
            return Reply(200, b"[]", "application/json")
        return EMPTY
    body = render(table, fmt)
    if body is None:
        return Reply(500, SERVER_ERROR.encode(), "text/plain")
    return Reply(200, body.data, body.content_type, body.headers)


def parse_date(dialect: str, text: str, day_first: bool = False) -> date | None:
    """The dialect's date parameter; ``None`` when unparsable (the server then finds nothing)."""
    patterns = {V1: r"(?P<y>\d{1,4})/(?P<m>\d{1,2})/(?P<d>\d{1,2})",
                V4: r"(?P<m>\d{1,2})-(?P<d>\d{1,2})-(?P<y>\d{4})",
                V3: r"(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})"}
    pattern = r"(?P<d>\d{1,2})/(?P<m>\d{1,2})/(?P<y>\d{1,4})" if day_first else patterns[dialect]
    m = re.fullmatch(pattern, text.strip())
    try:
        return date(int(m["y"]), int(m["m"]), int(m["d"])) if m else None
    except ValueError:
        return None


def _fmt(p: Params) -> str | None:
    return p.get("format")


def collection_values(d: str, cat: Catalog, p: Params) -> AnyReply:
    return table_reply(d, t.values("Collection", q.collections(cat)), _fmt(p))


def modality_values(d: str, cat: Catalog, p: Params) -> AnyReply:
    rows = q.select_series(cat, {"Collection": p.get("Collection"),
                                 "BodyPartExamined": p.get("BodyPartExamined")})
    items = q.distinct((s.modality for s in rows), upper=d == V4)
    return table_reply(d, t.values("Modality", items), _fmt(p))


def body_part_values(d: str, cat: Catalog, p: Params) -> AnyReply:
    rows = q.select_series(cat, {"Collection": p.get("Collection"), "Modality": p.get("Modality")})
    items = q.distinct((s.body_part for s in rows), upper=True)
    return table_reply(d, t.values("BodyPartExamined", items), _fmt(p))


def manufacturer_values(d: str, cat: Catalog, p: Params) -> AnyReply:
    rows = q.select_series(cat, {k: p.get(k) for k in ("Collection", "Modality",
                                                       "BodyPartExamined")})
    items = q.distinct((s.manufacturer for s in rows), upper=d == V4)
    return table_reply(d, t.values("Manufacturer", items), _fmt(p))


def patient(d: str, cat: Catalog, p: Params) -> AnyReply:
    pid = p.get("PatientID") if d == V3 else p.get("PatientId")
    return table_reply(d, t.patient_table(q.patients(cat, p.get("Collection"), pid), d), _fmt(p))


def patients_by_modality(d: str, cat: Catalog, p: Params) -> AnyReply:
    rows = q.patients_by_modality(cat, p["Collection"], p["Modality"])
    return table_reply(d, t.patient_id_table(rows, d), _fmt(p))


def patient_study(d: str, cat: Catalog, p: Params) -> AnyReply:
    rows = q.studies(cat, {k: p.get(k) for k in ("Collection", "PatientID", "StudyInstanceUID")})
    return table_reply(d, t.study_table(cat, rows, d), _fmt(p))


_SERIES_FILTERS = ("Collection", "PatientID", "StudyInstanceUID", "SeriesInstanceUID",
                   "Modality", "BodyPartExamined", "ManufacturerModelName", "Manufacturer")


def series(d: str, cat: Catalog, p: Params) -> AnyReply:
    rows = q.select_series(cat, {k: p.get(k) for k in _SERIES_FILTERS})
    return table_reply(d, t.series_table(cat, rows, d), _fmt(p))


def series_size(d: str, cat: Catalog, p: Params) -> AnyReply:
    found = cat.series.get(p["SeriesInstanceUID"])
    if found is None and d == V4:
        return EMPTY
    # v1: an aggregate without GROUP BY yields one all-NULL row, i.e. "[{}]".
    return table_reply(d, t.size_table(found), _fmt(p))


def sop_uids(d: str, cat: Catalog, p: Params) -> AnyReply:
    found = cat.series.get(p["SeriesInstanceUID"])
    items = [i.sop_uid for i in found.instances] if found else []
    return table_reply(d, t.values("SOPInstanceUID", items), _fmt(p))


def _since(d: str, p: Params) -> date | None:
    return parse_date(d, p["fromDate" if d == V4 else "Date"])


def new_patients(d: str, cat: Catalog, p: Params) -> AnyReply:
    since = _since(d, p)
    if since is None:
        return table_reply(d, Table(("PatientId",), []), _fmt(p))
    rows = q.new_patients(cat, p["Collection"], q.released_after(since, inclusive=d != V1))
    return table_reply(d, t.patient_table(rows, d), _fmt(p))


def new_studies(d: str, cat: Catalog, p: Params) -> AnyReply:
    since = _since(d, p)
    if since is None:
        return table_reply(d, Table(("StudyInstanceUID",), []), _fmt(p))
    rows = q.studies(cat, {"Collection": p["Collection"], "PatientID": p.get("PatientID")},
                     q.released_after(since, inclusive=d != V1))
    return table_reply(d, t.study_table(cat, rows, d), _fmt(p))


def updated_series(d: str, cat: Catalog, p: Params) -> AnyReply:
    # v1 parses fromDate as dd/MM/yyyy (a server bug clients work around); both are strict.
    text = p.get("fromDate")
    since = (date(1900, 1, 1) if text is None
             else parse_date(d, text, day_first=d == V1))
    if since is None:
        return EMPTY
    rows = [s for s in cat.series.values() if s.date_released > since]
    return table_reply(d, t.updated_series_table(cat, rows, d), _fmt(p))


def contents_by_name(d: str, cat: Catalog, p: Params) -> AnyReply:
    # No format parameter on this endpoint: always JSON.
    return table_reply(d, t.contents_table(cat, q.contents_by_name(cat, p["name"])), None)


_F = ("format",)
_UID_MISSING = "A parameter, SeriesInstanceUID is required for this API call."
_DATE_MISSING = "A parameter, Collection and Date are required for this API call."

METADATA: dict[str, Endpoint] = {e.name: e for e in [
    Endpoint("getCollectionValues", collection_values, _F),
    Endpoint("getModalityValues", modality_values, ("Collection", "BodyPartExamined", *_F)),
    Endpoint("getBodyPartValues", body_part_values, ("Collection", "Modality", *_F)),
    Endpoint("getManufacturerValues", manufacturer_values,
             ("Collection", "Modality", "BodyPartExamined", *_F)),
    Endpoint("getPatient", patient, ("Collection", "PatientId", *_F)),
    Endpoint("getPatientByCollectionAndModality", patients_by_modality,
             ("Collection", "Modality", *_F), ("Collection", "Modality"),
             "A parameter, Collection and Modality, are required for this API call."),
    Endpoint("getPatientStudy", patient_study,
             ("Collection", "PatientID", "StudyInstanceUID", *_F)),
    Endpoint("getSeries", series, (*_SERIES_FILTERS, *_F)),
    Endpoint("getSeriesSize", series_size, ("SeriesInstanceUID", *_F), ("SeriesInstanceUID",),
             _UID_MISSING),
    Endpoint("getSOPInstanceUIDs", sop_uids, ("SeriesInstanceUID", *_F),
             ("SeriesInstanceUID",), _UID_MISSING),
    Endpoint("NewPatientsInCollection", new_patients, ("Collection", "Date", *_F),
             ("Collection", "Date"), _DATE_MISSING),
    Endpoint("NewStudiesInPatientCollection", new_studies,
             ("Collection", "Date", "PatientID", *_F), ("Collection", "Date"), _DATE_MISSING),
    Endpoint("getUpdatedSeries", updated_series, ("fromDate", *_F)),
    Endpoint("getContentsByName", contents_by_name, ("name",), ("name",),
             "A parameter, name is required for this API call."),
]}


def dialect_view(dialect: str, ep: Endpoint) -> Endpoint:
    """v4 renames ``Date`` to ``fromDate``; v3 uses ``PatientID`` in getPatient."""
    if dialect == V4 and "Date" in ep.params:
        swap = {"Date": "fromDate"}
        return replace(ep, params=tuple(swap.get(x, x) for x in ep.params),
                       required=tuple(swap.get(x, x) for x in ep.required))
    if dialect == V3 and ep.name == "getPatient":
        return replace(ep, params=("Collection", "PatientID", *_F))
    return ep
