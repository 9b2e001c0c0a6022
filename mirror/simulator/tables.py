"""Column lists and value formats per dialect (key names, key order, date formats).

Each builder turns catalog records into a :class:`~mirror.simulator.wire.Table` whose
columns are exactly those of the reference, in the reference's order.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

from mirror.simulator.catalog import Catalog
from mirror.simulator.model import Patient, Series, Study
from mirror.simulator.wire import Long, Stamp, Table

V3, V1, V2, V4 = "v3", "nbia-v1", "nbia-v2", "nbia-v4"


def stamp(dialect: str, when: date | datetime | None) -> Stamp | None:
    """v1: Java Timestamp text; v4: ``MM-DD-YYYY``; v3 (Bindaas): ``YYYY-MM-DD``."""
    if when is None:
        return None
    if dialect == V4:
        return Stamp(when.strftime("%m-%d-%Y"))
    if dialect == V3:
        return Stamp(when.strftime("%Y-%m-%d"))
    if isinstance(when, datetime):
        return Stamp(when.strftime("%Y-%m-%d %H:%M:%S.0"))
    return Stamp(when.strftime("%Y-%m-%d 00:00:00.0"))


def values(column: str, items: Iterable[str | None]) -> Table:
    return Table((column,), [(v,) for v in items])


_SERIES_V1 = ("SeriesInstanceUID", "StudyInstanceUID", "Modality", "ProtocolName", "SeriesDate",
              "SeriesDescription", "BodyPartExamined", "SeriesNumber", "AnnotationsFlag",
              "Collection", "PatientID", "Manufacturer", "ManufacturerModelName",
              "SoftwareVersions", "ImageCount", "TimeStamp", "LicenseName", "LicenseURI",
              "CollectionURI", "FileSize", "DateReleased", "StudyDesc", "StudyDate",
              "ThirdPartyAnalysis")
_SERIES_V4 = ("SeriesInstanceUID", "StudyInstanceUID", "Modality", "ProtocolName", "SeriesDate",
              "SeriesDescription", "BodyPartExamined", "SeriesNumber", "AnnotationsFlag",
              "Collection", "Site", "PatientID", "PatientSex", "PatientAge",
              "AdmittingDiagnosisDescription", "Manufacturer", "ManufacturerModelName",
              "SoftwareVersions", "ImageCount", "MaxSubmissionTimestamp", "LicenseName",
              "LicenseURI", "DataDescriptionURI", "FileSize", "ReleasedStatus", "DateReleased",
              "StudyDesc", "StudyDate", "ThirdPartyAnalysis", "Authorized")
_SERIES_V3 = ("PatientID", "Collection", "StudyInstanceUID", "SeriesInstanceUID", "Modality",
              "ProtocolName", "SeriesDate", "SeriesDescription", "BodyPartExamined",
              "SeriesNumber", "AnnotationsFlag", "Manufacturer", "ManufacturerModelName",
              "SoftwareVersions", "ImageCount")
_UPDATED_V1 = (*_SERIES_V1[:15], "DateReleased")
_CONTENTS = (*_SERIES_V1[:15], "Date Released")


def series_values(cat: Catalog, s: Series, dialect: str) -> dict[str, object]:
    coll, patient, study = cat.context(s)
    return {
        "SeriesInstanceUID": s.series_uid, "StudyInstanceUID": s.study_uid,
        "Modality": s.modality, "ProtocolName": s.protocol_name,
        "SeriesDate": stamp(dialect, s.series_date), "SeriesDescription": s.description,
        "BodyPartExamined": s.body_part, "SeriesNumber": s.series_number,
        "AnnotationsFlag": False, "Collection": s.collection, "Site": coll.site,
        "PatientID": s.patient_id, "PatientSex": patient.sex, "PatientAge": study.patient_age,
        "AdmittingDiagnosisDescription": None, "Manufacturer": s.manufacturer,
        "ManufacturerModelName": s.model, "SoftwareVersions": s.software_versions,
        "ImageCount": s.image_count, "TimeStamp": stamp(dialect, s.timestamp),
        "MaxSubmissionTimestamp": stamp(dialect, s.timestamp),
        "LicenseName": coll.license_name, "LicenseURI": coll.license_uri,
        "CollectionURI": coll.collection_uri, "DataDescriptionURI": coll.collection_uri,
        "FileSize": Long(s.file_size), "ReleasedStatus": "Released",
        "DateReleased": stamp(dialect, s.date_released),
        "Date Released": stamp(dialect, s.date_released),
        "StudyDesc": study.description, "StudyDate": stamp(dialect, study.study_date),
        "ThirdPartyAnalysis": s.third_party, "Authorized": 1,
    }


def _rows(columns: tuple[str, ...], dicts: Iterable[dict[str, object]]) -> Table:
    return Table(columns, [tuple(d[c] for c in columns) for d in dicts])


def series_table(cat: Catalog, series: Iterable[Series], dialect: str) -> Table:
    cols = {V1: _SERIES_V1, V4: _SERIES_V4, V3: _SERIES_V3}[dialect]
    return _rows(cols, (series_values(cat, s, dialect) for s in series))


def updated_series_table(cat: Catalog, series: Iterable[Series], dialect: str) -> Table:
    cols = _SERIES_V4 if dialect == V4 else _UPDATED_V1
    return _rows(cols, (series_values(cat, s, dialect) for s in series))


def contents_table(cat: Catalog, series: Iterable[Series]) -> Table:
    return _rows(_CONTENTS, (series_values(cat, s, V1) for s in series))


_PATIENT = {
    V1: ("PatientId", "PatientName", "PatientBirthDate", "PatientSex", "EthnicGroup",
         "Collection", "Phantom", "SpeciesCode", "SpeciesDescription"),
    V4: ("PatientId", "PatientName", "PatientSex", "EthnicGroup", "Collection", "Phantom",
         "SpeciesCode", "SpeciesDescription", "Authorized"),
    V3: ("PatientID", "PatientName", "PatientBirthDate", "PatientSex", "EthnicGroup",
         "Collection"),
}


def _patient_values(p: Patient, dialect: str) -> dict[str, object]:
    return {"PatientId": p.patient_id, "PatientID": p.patient_id, "PatientName": p.name,
            "PatientBirthDate": stamp(dialect, p.birth_date), "PatientSex": p.sex,
            "EthnicGroup": None, "Collection": p.collection, "Phantom": "NO",
            "SpeciesCode": "337915000", "SpeciesDescription": "Homo sapiens", "Authorized": 1}


def patient_table(patients: Iterable[Patient], dialect: str) -> Table:
    return _rows(_PATIENT[dialect], (_patient_values(p, dialect) for p in patients))


def patient_id_table(patients: Iterable[Patient], dialect: str) -> Table:
    cols = {V1: ("PatientId",), V4: ("PatientId", "Authorized"), V3: ("PatientID",)}[dialect]
    return _rows(cols, (_patient_values(p, dialect) for p in patients))


_STUDY_V1 = ("StudyInstanceUID", "StudyDate", "StudyDescription",
             "AdmittingDiagnosesDescription", "StudyID", "PatientAge", "PatientID",
             "PatientName", "PatientBirthDate", "PatientSex", "EthnicGroup", "Collection",
             "SeriesCount", "LongitudinalTemporalEventType",
             "LongitudinalTemporalOffsetFromEvent")
_STUDY = {
    V1: _STUDY_V1,
    V4: (*(c for c in _STUDY_V1 if c != "PatientBirthDate"), "Authorized"),
    V3: ("PatientID", "PatientName", "PatientBirthDate", "PatientAge", "PatientSex",
         "EthnicGroup", "AdmittingDiagnosesDescription", "Collection", "StudyID",
         "StudyInstanceUID", "StudyDate", "StudyDescription", "SeriesCount"),
}


def study_table(cat: Catalog, studies: Iterable[tuple[Study, int]], dialect: str) -> Table:
    def one(st: Study, count: int) -> dict[str, object]:
        p = cat.patients[st.patient_id]
        return {**_patient_values(p, dialect), "StudyInstanceUID": st.study_uid,
                "StudyDate": stamp(dialect, st.study_date), "StudyDescription": st.description,
                "AdmittingDiagnosesDescription": None, "StudyID": st.study_id,
                "PatientAge": st.patient_age, "SeriesCount": count,
                "LongitudinalTemporalEventType": None,
                "LongitudinalTemporalOffsetFromEvent": None}

    return _rows(_STUDY[dialect], (one(st, n) for st, n in studies))


def size_table(series: Series | None) -> Table:
    if series is None:
        return Table(("TotalSizeInBytes", "ObjectCount"), [(None, None)])
    return Table(("TotalSizeInBytes", "ObjectCount"),
                 [(Long(series.file_size), series.image_count)])
