"""Pure, seeded generation of the archive's metadata (no bytes): the base dataset and new records.

Every choice comes from a ``random.Random`` seeded by a digest of its inputs, so the same
seed and sizes give the same UIDs and values on every machine.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import date, datetime, time, timedelta

from mirror.simulator.model import (
    CollectionInfo,
    DatasetSpec,
    Instance,
    Patient,
    Series,
    Study,
    derive_uid,
    digest,
)

_COLLECTIONS = [
    ("SIM-LUNG", "CT", "CHEST"), ("SIM-BRAIN-MR", "MR", "BRAIN"),
    ("SIM-HEAD-NECK", "CT", "HEADNECK"), ("SIM-PROSTATE", "MR", "PROSTATE"),
    ("SIM-COLON", "CT", "COLON"), ("SIM-KIDNEY", "CT", "KIDNEY"),
    ("SIM-LIVER", "CT", "LIVER"), ("SIM-BREAST-MR", "MR", "BREAST"),
]
_LICENSES = [
    ("Creative Commons Attribution 4.0 International License",
     "https://creativecommons.org/licenses/by/4.0/"),
    ("Creative Commons Attribution 3.0 Unported License",
     "http://creativecommons.org/licenses/by/3.0/"),
]
# Mixed case on purpose: v1 returns raw values, v4 upper-cases them.
_EQUIPMENT = [
    ("GE MEDICAL SYSTEMS", "LightSpeed16", "LightSpeedverrel"),
    ("SIEMENS", "Sensation 64", None),
    ("Philips", "Brilliance 40", "3.2.1"),
]
#: Base releases of collection i happen on BASE_RELEASE + 30*i days.
BASE_RELEASE = date(2020, 1, 15)


def rng_for(*parts: object) -> random.Random:
    return random.Random(digest(*parts))


def make_collections(spec: DatasetSpec) -> list[CollectionInfo]:
    out = []
    for i in range(spec.collections):
        name, modality, body = _COLLECTIONS[(i + spec.seed - 1) % len(_COLLECTIONS)]
        if i >= len(_COLLECTIONS):
            name = f"{name}-{i // len(_COLLECTIONS) + 1}"
        if i < len(spec.collection_names):
            name = spec.collection_names[i]
        lic_name, lic_uri = _LICENSES[i % len(_LICENSES)]
        out.append(CollectionInfo(
            name=name, modality=modality, body_part=body, license_name=lic_name,
            license_uri=lic_uri, collection_uri=f"https://doi.org/10.7937/TCIA.SIM.{name}",
            site=f"SITE-{i % 3 + 1}"))
    return out


def make_patient(spec: DatasetSpec, coll: CollectionInfo, number: int) -> Patient:
    rng = rng_for(spec.seed, "patient", coll.name, number)
    return Patient(collection=coll.name, patient_id=f"{coll.name}-{number:04d}", name="",
                   sex=rng.choice("MF"), birth_date=None)


def make_study(spec: DatasetSpec, patient: Patient, salt: object) -> Study:
    rng = rng_for(spec.seed, "study", patient.patient_id, salt)
    day = date(1995, 1, 1) + timedelta(days=rng.randrange(0, 9000))
    return Study(
        collection=patient.collection, patient_id=patient.patient_id,
        study_uid=derive_uid(spec.seed, "study", patient.patient_id, salt),
        study_date=day, description=rng.choice(["CHEST W CONTRAST", "BASELINE", None, "F/U"]),
        study_id=str(rng.randrange(1, 99999)), patient_age=f"{rng.randrange(30, 85):03d}Y")


def make_series(spec: DatasetSpec, coll: CollectionInfo, study: Study, salt: object,
                released: date) -> Series:
    """A series without instances; :func:`with_instances` adds them."""
    rng = rng_for(spec.seed, "series", study.study_uid, salt)
    number = rng.randrange(1, 9000)
    maker, model, software = rng.choice(_EQUIPMENT)
    thickness = rng.choice(["1.0", "2.5", "5.0"])
    return Series(
        collection=coll.name, patient_id=study.patient_id, study_uid=study.study_uid,
        series_uid=derive_uid(spec.seed, "series", study.study_uid, salt),
        modality=coll.modality, body_part=None if number % 5 == 0 else coll.body_part,
        series_number=number,
        # A "/" in descriptions exercises Jettison's "\/" escaping.
        description=rng.choice([f"AXIAL {thickness}/{thickness} mm", "SCOUT", None]),
        protocol_name=rng.choice([f"{coll.body_part} ROUTINE", None]),
        series_date=study.study_date, manufacturer=maker, model=model,
        software_versions=software, third_party=rng.choice(["NO", None]),
        date_released=released, timestamp=_submitted(released, rng))


def _submitted(released: date, rng: random.Random) -> datetime:
    # Curators release a few days after the last submission.
    return datetime.combine(released - timedelta(days=rng.randrange(1, 9)),
                            time(rng.randrange(8, 18), rng.randrange(60), rng.randrange(60)))


def dicom_identity(patient: Patient, study: Study, series: Series) -> str:
    """Every input of a DICOM header except the per-instance values: part of blob keys."""
    s = replace(series, instances=(), version=0, date_released=date.min,
                timestamp=datetime.min)
    return digest(repr(patient), repr(study), repr(s))


def make_instance(spec: DatasetSpec, identity: str, series: Series, number: int,
                  acquisition: int, salt: object) -> Instance:
    sop = derive_uid(spec.seed, "sop", series.series_uid, number, salt)
    blob = digest(identity, sop, number, acquisition, spec.instance_size)
    return Instance(sop_uid=sop, instance_number=number, acquisition_number=acquisition,
                    blob=blob)


def initial_instances(spec: DatasetSpec, identity: str, series: Series) -> tuple[Instance, ...]:
    n = spec.instances
    # Even series numbers get two acquisitions, so "1-001"/"2-001" names get exercised.
    two = series.series_number % 2 == 0 and n >= 4
    return tuple(
        make_instance(spec, identity, series, k, 2 if two and k > n // 2 else 1, "base")
        for k in range(1, n + 1))


def base_release(index: int) -> date:
    return BASE_RELEASE + timedelta(days=30 * index)
