"""getMD5Hierarchy as the NBIA v4 server computes it (tcia-api-v4.md section 1).

Series, study and patient hashes are computed live from the snapshot; the collection
hash is only read from the snapshot's stored cache, which releases leave stale until
:func:`refresh_cache` runs (the server's daily Quartz job); :func:`stored_hashes` reads it.
"""

from __future__ import annotations

from mirror import merkle
from mirror.simulator.catalog import Catalog
from mirror.simulator.endpoints import Endpoint, Params
from mirror.simulator.replies import AnyReply, Reply

FIELDS = ("SeriesInstanceUID", "StudyInstanceUID", "PatientID", "Collection")


def series_hash(cat: Catalog, series_uid: str) -> str:
    # No visibility filter at series level on the server: any known UID answers.
    s = cat.series.get(series_uid)
    return "" if s is None else merkle.series_hash(cat.stored(i) for i in s.instances)


def study_hash(cat: Catalog, study_uid: str) -> str:
    return merkle.combine(series_hash(cat, s.series_uid)
                          for s in cat.series_by_study.get(study_uid, ()))


def patient_hash(cat: Catalog, patient_id: str, collection: str | None) -> str:
    """Studies of the patient *in that collection*: without one the server finds nothing."""
    if collection is None:
        return ""
    studies = cat.studies_by_patient.get((collection, patient_id), ())
    return merkle.combine(study_hash(cat, uid) for uid in studies)


def collection_hash(cat: Catalog, collection: str) -> str:
    """What the daily job would store now (the guest's view: every visible series)."""
    return _collection_hashes(cat).get(collection, "")


def refresh_cache(cat: Catalog) -> dict[str, str]:
    """The daily job: every collection's hash, skipping those with nothing visible."""
    return {name: h for name, h in _collection_hashes(cat).items() if h}


def stored_hashes(cat: Catalog) -> dict[str, str]:
    """Collection-level values as the daily job last stored them (maybe stale).

    Computed on first use (one pass over the job's snapshot), not when the simulator
    starts, and kept on that immutable snapshot.
    """
    job = cat.md5_job_snapshot or cat
    if not job.job_hashes:
        job.job_hashes.update(refresh_cache(job))
    return job.job_hashes


def _collection_hashes(cat: Catalog) -> dict[str, str]:
    """Every collection at once: one pass over the snapshot, not one per patient."""
    patients: dict[str, list[str]] = {}
    for collection, patient_id in cat.studies_by_patient:
        patients.setdefault(collection, []).append(
            patient_hash(cat, patient_id, collection))
    return {name: merkle.combine(kids) for name, kids in patients.items()}


def md5_hierarchy(d: str, cat: Catalog, p: Params) -> AnyReply:
    """Each level whose parameter is set overwrites the answer: the last one wins."""
    md5 = ""
    if p.get("SeriesInstanceUID"):
        md5 = series_hash(cat, p["SeriesInstanceUID"])
    if p.get("StudyInstanceUID"):
        md5 = study_hash(cat, p["StudyInstanceUID"])
    if p.get("PatientID"):
        md5 = patient_hash(cat, p["PatientID"], p.get("Collection") or None)
    elif p.get("Collection"):
        md5 = stored_hashes(cat).get(p["Collection"], "")  # stored value only, maybe stale
    # @Produces(application/json), but the entity is built as text/plain.
    return Reply(200, md5.encode(), "text/plain")


ENDPOINT = Endpoint("getMD5Hierarchy", md5_hierarchy, FIELDS, methods=("POST",),
                    param_kind="form", produces_json=True)
