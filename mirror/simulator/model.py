"""Value types of the simulated archive: collections, patients, studies, series, instances.

Everything here is immutable; a release builds new records instead of changing old ones.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime

#: UIDs look like TCIA's own (root used by many TCIA collections) followed by hash digits.
UID_ROOT = "1.3.6.1.4.1.9590.100.1.2."


@dataclass(frozen=True)
class DatasetSpec:
    """Size and seed of the generated base dataset."""

    seed: int = 1
    collections: int = 1
    patients: int = 2  #: per collection
    studies: int = 1  #: per patient
    series: int = 2  #: per study
    instances: int = 3  #: per series
    instance_size: int = 2048  #: bytes of pixel data per instance, roughly
    #: Names for the first collections instead of the generated ones (e.g. ("NLST",)).
    collection_names: tuple[str, ...] = ()


def second_host_spec(spec: DatasetSpec, collection: str = "NLST") -> DatasetSpec:
    """An independent dataset for a second NBIA host (NLST has its own host): other
    seed, so other UIDs, and one collection of its own name."""
    return DatasetSpec(seed=spec.seed + 1000, collections=1, patients=spec.patients,
                       studies=spec.studies, series=spec.series, instances=spec.instances,
                       instance_size=spec.instance_size, collection_names=(collection,))


@dataclass(frozen=True)
class CollectionInfo:
    name: str
    modality: str
    body_part: str
    license_name: str
    license_uri: str
    collection_uri: str
    site: str


@dataclass(frozen=True)
class Patient:
    collection: str
    patient_id: str
    name: str
    sex: str
    birth_date: date | None


@dataclass(frozen=True)
class Study:
    collection: str
    patient_id: str
    study_uid: str
    study_date: date
    description: str | None
    study_id: str
    patient_age: str


@dataclass(frozen=True)
class Instance:
    sop_uid: str
    instance_number: int
    acquisition_number: int
    blob: str  #: content key of the DICOM file under <data>/blobs/
    size: int = 0
    md5: str = ""


@dataclass(frozen=True)
class Series:
    collection: str
    patient_id: str
    study_uid: str
    series_uid: str
    modality: str
    body_part: str | None
    series_number: int
    description: str | None
    protocol_name: str | None
    series_date: date
    manufacturer: str
    model: str
    software_versions: str | None
    third_party: str | None
    date_released: date
    timestamp: datetime  #: max submission timestamp; changes with every revision
    instances: tuple[Instance, ...] = field(default=())
    version: int = 1

    @property
    def image_count(self) -> int:
        return len(self.instances)

    @property
    def file_size(self) -> int:
        return sum(i.size for i in self.instances)

    @property
    def content_key(self) -> str:
        """Names this version's bytes: ZIP caches are keyed by it."""
        return digest(self.series_uid, self.collection, *(i.blob for i in self.instances))


def digest(*parts: object) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()


def derive_uid(*parts: object) -> str:
    """A UID that depends only on *parts*: same inputs, same UID, on every machine."""
    number = int(digest(*parts), 16) % (9 * 10**37) + 10**37
    return f"{UID_ROOT}{number}"
