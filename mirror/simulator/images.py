"""Image and per-series metadata endpoints: getImage variants, getSingleImage, MD5s, metadata.

The dialect tables (which names exist where, with which parameters) are at the bottom.
"""

from __future__ import annotations

import re
from dataclasses import replace

from mirror.simulator import endpoints as e
from mirror.simulator import md5tree
from mirror.simulator.catalog import Catalog
from mirror.simulator.endpoints import Endpoint, Params
from mirror.simulator.model import Series
from mirror.simulator.replies import (
    AnyReply,
    FileReply,
    Reply,
    ZipReply,
    bad_request,
    server_error,
)
from mirror.simulator.tables import V1, V2, V3, V4, series_values
from mirror.simulator.wire import Table
from mirror.simulator.zips import ZipVariant, dicom_entries


def _not_granted(d: str, uid: str) -> Reply:
    if d in (V2, V4):
        return bad_request(f"The user has not been granted the access to image with given "
                           f"SeriesInstanceUID,{uid}. Please contact System Admin to resolve "
                           f"this issue.")
    return bad_request(f"Image with given SeriesInstanceUID,{uid}, is not in public domain.")


def _yes(p: Params, key: str) -> bool:
    return p.get(key, "").lower() == "yes"


def _zip(d: str, cat: Catalog, p: Params, variant: ZipVariant) -> AnyReply:
    uid = p["SeriesInstanceUID"]
    s = cat.series.get(uid)
    if s is None:
        return _not_granted(d, uid)
    # Legacy Bindaas answered with the count in a header (SDK reads "imageCount").
    extra = (("imageCount", str(s.image_count)),) if d == V3 else ()
    return ZipReply(s, cat.collections[s.collection], variant, f"{uid}.zip", extra)


def _stored(cat: Catalog, uid: str) -> tuple[tuple[str, str | None], ...]:
    s = cat.series.get(uid)
    return tuple((i.sop_uid, cat.stored(i)) for i in s.instances
                 if i.blob in cat.stored_md5) if s else ()


def _first_null(s: Series | None, stored: tuple[tuple[str, str | None], ...],
                new_names: bool) -> int | None:
    """Entry index of the first image whose digest is NULL, in ZIP order."""
    nulls = {sop for sop, md5 in stored if md5 is None}
    if s is None or not nulls:
        return None
    entries = dicom_entries(s, ZipVariant(new_names=new_names))
    return next(k for k, (_, inst) in enumerate(entries) if inst.sop_uid in nulls)


def get_image(d: str, cat: Catalog, p: Params) -> AnyReply:
    uid, new_names = p.get("SeriesInstanceUID", ""), _yes(p, "NewFileNames")
    stored = _stored(cat, uid)
    # v4's default-name branch builds each CSV row with toString(): a NULL digest throws
    # there and the ZIP ends before that image, without md5hashes.csv (reference §5).
    limit = _first_null(cat.series.get(uid), stored, new_names) if d == V4 and not new_names \
        else None
    variant = ZipVariant(new_names=new_names, license=d != V3,
                         md5=d == V4 and _yes(p, "IncludeMD5"), stored=stored, limit=limit)
    return _zip(d, cat, p, variant)


def get_image_md5(d: str, cat: Catalog, p: Params) -> AnyReply:
    stored = _stored(cat, p.get("SeriesInstanceUID", ""))
    # The DAO throws on a NULL digest before any entry is written: an empty ZIP.
    limit = 0 if any(md5 is None for _, md5 in stored) else None
    return _zip(d, cat, p, ZipVariant(license=False, md5=True, stored=stored, limit=limit))


def single_image(d: str, cat: Catalog, p: Params) -> AnyReply:
    found = cat.sop_index.get(p["SOPInstanceUID"])
    if found is None or found[0].series_uid != p["SeriesInstanceUID"]:
        return server_error()  # the DAO returns null: NullPointerException
    sop = p["SOPInstanceUID"]
    return FileReply(found[1].blob, "application/dicom",
                     (("Content-Disposition", f"attachment; filename={sop}.dcm"),))


def md5_for_image(d: str, cat: Catalog, p: Params) -> AnyReply:
    found = cat.sop_index.get(p.get("SOPInstanceUid" if d == V1 else "SOPInstanceUID", ""))
    stored = cat.stored(found[1]) if found else None  # a NULL digest: an empty body
    return Reply(200, (stored or "").encode(), "text/plain")


def _clean(text: str | None) -> str | None:
    return None if text is None else re.sub(r"[^a-zA-Z0-9 .-]", "", text)


def _java_date(s: Series) -> dict[str, str]:
    fmt = "%a %b %d %H:%M:%S UTC %Y"
    return {"Date Released": s.date_released.strftime("%a %b %d 00:00:00 UTC %Y"),
            "Series Date": s.series_date.strftime("%a %b %d 00:00:00 UTC %Y"),
            "TimeStamp": s.timestamp.strftime(fmt)}


_META_V1 = ("Series UID", "Collection", "3rd Party Analysis", "Data Description URI",
            "Subject ID", "Study UID", "Study Description", "Study Date", "Series Description",
            "Manufacturer", "Modality", "SOP Class UID", "Number of Images", "File Size",
            "File Location", "Series Number", "License Name", "License URL", "Annotation Size",
            "Date Released", "Series Date", "Protocol Name", "Body Part Examined",
            "Annotations Flag", "Manufacturer Model Name", "Software Versions", "TimeStamp")


def series_metadata_v1(d: str, cat: Catalog, p: Params) -> AnyReply:
    s = cat.series.get(p["SeriesInstanceUID"])
    if s is None:
        return Reply(204)
    coll, _patient, study = cat.context(s)
    sop_class = "1.2.840.10008.5.1.4.1.1.4" if s.modality == "MR" else "1.2.840.10008.5.1.4.1.1.2"
    v = {"Series UID": s.series_uid, "Collection": s.collection,
         "3rd Party Analysis": s.third_party, "Data Description URI": coll.collection_uri,
         "Subject ID": s.patient_id, "Study UID": s.study_uid,
         "Study Description": _clean(study.description),
         "Study Date": study.study_date.strftime("%m-%d-%Y"),
         "Series Description": _clean(s.description),
         "Manufacturer": s.manufacturer.replace(",", " "), "Modality": s.modality,
         "SOP Class UID": sop_class, "Number of Images": str(s.image_count),
         "File Size": str(s.file_size), "File Location": study.study_id,
         "Series Number": f"{s.series_number}.000000", "License Name": coll.license_name,
         "License URL": coll.license_uri, "Annotation Size": "0",
         "Protocol Name": s.protocol_name, "Body Part Examined": s.body_part,
         "Annotations Flag": "false", "Manufacturer Model Name": s.model,
         "Software Versions": s.software_versions, **_java_date(s)}
    return e.table_reply(d, Table(_META_V1, [tuple(v[c] for c in _META_V1)]), p.get("format"))


_META_V4 = ("PatientID", "PatientName", "PatientSex", "EthnicGroup", "Phantom", "SpeciesCode",
            "SpeciesDescription", "StudyInstanceUID", "StudyDate", "StudyDesc",
            "AdmittingDiagnosisDescription", "StudyID", "PatientAge",
            "LongitudinalTemporalEventType", "LongitudinalTemporalOffsetFromEvent",
            "SeriesInstanceUID", "Collection", "Site", "Modality", "ProtocolName", "SeriesDate",
            "SeriesDescription", "BodyPartExamined", "SeriesNumber", "AnnotationsFlag",
            "Manufacturer", "ManufacturerModelName", "PixelSpacing(mm)-Row",
            "SliceThickness(mm)", "SoftwareVersions", "ImageCount", "MaxSubmissionTimestamp",
            "LicenseName", "LicenseURI", "DataDescriptionURI", "FileSize", "ReleasedStatus",
            "DateReleased", "ThirdPartyAnalysis", "Authorized")


def series_metadata_v4(d: str, cat: Catalog, p: Params) -> AnyReply:
    # the server strips each value to [0-9,.] and splits it on commas (reference §9)
    uids = [u for u in re.sub(r"[^0-9,.]", "", p["list"]).split(",") if u]
    rows = []
    for uid in uids:
        s = cat.series.get(uid)
        if s is None:
            continue
        _coll, patient, study = cat.context(s)
        v = {**series_values(cat, s, V4), "PatientName": patient.name, "Phantom": "NO",
             "SpeciesCode": "337915000", "SpeciesDescription": "Homo sapiens",
             "StudyID": study.study_id, "PixelSpacing(mm)-Row": 0.7, "SliceThickness(mm)": 2.5,
             "EthnicGroup": None, "LongitudinalTemporalEventType": None,
             "LongitudinalTemporalOffsetFromEvent": None}
        rows.append(tuple(v[c] for c in _META_V4))
    return e.table_reply(d, Table(_META_V4, rows), p.get("format", "csv-download"))


_UID = ("SeriesInstanceUID",)
_IMAGE_MISSING = "A parameter, SeriesInstanceUID, is required for this API call."
_SINGLE_MISSING = ("A parameter, SeriesInstanceUID and SOPInstanceUID, are required for this "
                   "API call.")
IMAGES: dict[str, Endpoint] = {x.name: x for x in [
    Endpoint("getImage", get_image, ("SeriesInstanceUID", "NewFileNames", "IncludeMD5"), _UID,
             _IMAGE_MISSING, image=True),
    Endpoint("getImageWithMD5Hash", get_image_md5, _UID, _UID, _IMAGE_MISSING, image=True),
    Endpoint("getSingleImage", single_image, ("SeriesInstanceUID", "SOPInstanceUID"),
             ("SeriesInstanceUID", "SOPInstanceUID"), _SINGLE_MISSING, image=True),
    Endpoint("getM5HashForImage", md5_for_image, ("SOPInstanceUid",)),
    Endpoint("getMD5HashForImage", md5_for_image, ("SOPInstanceUID",)),
    Endpoint("getSeriesMetaData", series_metadata_v1, ("SeriesInstanceUID", "format"), _UID,
             "A parameter, SeriesInstanceUID is required for this API call."),
    Endpoint("getSeriesMetadata", series_metadata_v4, ("list", "format"), ("list",),
             "A form parameter, list, containing at least one SeriesInstanceUID is required.",
             methods=("GET", "POST")),
]}

_ALL = {**e.METADATA, **IMAGES}
_V3_NAMES = {"getCollectionValues": "getCollectionValues", "getModalityValues":
             "getModalityValues", "getBodyPartValues": "getBodyPartValues",
             "getManufacturerValues": "getManufacturerValues", "getPatient": "getPatient",
             "PatientsByModality": "getPatientByCollectionAndModality",
             "getPatientStudy": "getPatientStudy", "getSeries": "getSeries",
             "getSeriesSize": "getSeriesSize", "getImage": "getImage",
             "NewPatientsInCollection": "NewPatientsInCollection",
             "NewStudiesInPatientCollection": "NewStudiesInPatientCollection",
             "getSOPInstanceUIDs": "getSOPInstanceUIDs", "getSingleImage": "getSingleImage"}
# Shared lists (getContentsByName) exist only on NBIA v1/v2: no v3 or v4 variant.
_V1_NAMES = [n for n in _ALL if n not in ("getMD5HashForImage", "getSeriesMetadata")]
_V4_NAMES = [n for n in _ALL if n not in ("getM5HashForImage", "getSeriesMetaData",
                                          "getContentsByName")]


def _table(dialect: str, names: dict[str, str]) -> dict[str, Endpoint]:
    return {public: replace(e.dialect_view(dialect, _ALL[inner]), name=public)
            for public, inner in names.items()}


DIALECTS: dict[str, dict[str, Endpoint]] = {
    V3: _table(V3, _V3_NAMES),
    V1: _table(V1, {n: n for n in _V1_NAMES}),
    V4: {**_table(V4, {n: n for n in _V4_NAMES}), "getMD5Hierarchy": md5tree.ENDPOINT},
}
