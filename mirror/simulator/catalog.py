"""The archive as the server sees it at one moment: an immutable snapshot with lookup indexes.

Releases replace the snapshot as a whole, so a request always sees one consistent state.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property

from mirror.simulator import dataset
from mirror.simulator.model import (
    CollectionInfo,
    DatasetSpec,
    Instance,
    Patient,
    Series,
    Study,
    derive_uid,
)


@dataclass(frozen=True)
class Catalog:
    spec: DatasetSpec
    collections: dict[str, CollectionInfo]
    patients: dict[str, Patient]
    studies: dict[str, Study]
    series: dict[str, Series]  #: visible series only, in "database" order
    shared_lists: dict[str, tuple[str, ...]] = field(default_factory=dict)
    releases: int = 0
    #: Per-image MD5s the server stores differently from the file's digest, keyed by blob
    #: (so a revised image loses its override): None = NULL, " " = CTP without a
    #: digest, or the digest without its leading zeros.
    stored_md5: dict[str, str | None] = field(default_factory=dict)
    #: The snapshot the server's daily collection-hash job last ran on (None: this one).
    #: Releases and stored-MD5 changes keep pointing at the old one, so the stored
    #: collection hashes go stale; only a refresh (admin or simulated clock) moves it.
    md5_job_snapshot: Catalog | None = field(default=None, repr=False, compare=False)

    #: What the daily job stored when it ran on this snapshot, filled in on first use by
    #: :func:`mirror.simulator.md5tree.stored_hashes` (most runs never ask for one).
    job_hashes: dict[str, str] = field(default_factory=dict, init=False, repr=False,
                                       compare=False)

    @cached_property
    def sop_index(self) -> dict[str, tuple[Series, Instance]]:
        return {i.sop_uid: (s, i) for s in self.series.values() for i in s.instances}

    @cached_property
    def series_by_study(self) -> dict[str, list[Series]]:
        out: dict[str, list[Series]] = {}
        for s in self.series.values():
            out.setdefault(s.study_uid, []).append(s)
        return out

    @cached_property
    def studies_by_patient(self) -> dict[tuple[str, str], list[str]]:
        """(collection, PatientID) -> its studies with a visible series, first seen first."""
        out: dict[tuple[str, str], dict[str, None]] = {}
        for s in self.series.values():
            out.setdefault((s.collection, s.patient_id), {})[s.study_uid] = None
        return {key: list(studies) for key, studies in out.items()}

    @cached_property
    def visible_patient_ids(self) -> set[str]:
        return {s.patient_id for s in self.series.values()}

    def visible_studies(self) -> list[Study]:
        return [st for uid, st in self.studies.items() if uid in self.series_by_study]

    def visible_patients(self) -> list[Patient]:
        ids = self.visible_patient_ids
        return [p for pid, p in self.patients.items() if pid in ids]

    def stored(self, inst: Instance) -> str | None:
        """The instance's ``md5_digest`` as the server's database holds it."""
        return self.stored_md5.get(inst.blob, inst.md5)

    def context(self, series: Series) -> tuple[CollectionInfo, Patient, Study]:
        return (self.collections[series.collection], self.patients[series.patient_id],
                self.studies[series.study_uid])


def build_base(spec: DatasetSpec) -> Catalog:
    """The base dataset's metadata; instance sizes and MD5s are filled in by the writer."""
    collections, patients, studies, series = {}, {}, {}, {}
    for ci, coll in enumerate(dataset.make_collections(spec)):
        collections[coll.name] = coll
        released = dataset.base_release(ci)
        for pn in range(1, spec.patients + 1):
            patient = dataset.make_patient(spec, coll, pn)
            patients[patient.patient_id] = patient
            for sn in range(spec.studies):
                study = dataset.make_study(spec, patient, sn)
                studies[study.study_uid] = study
                for xn in range(spec.series):
                    s = new_series(spec, coll, patient, study, xn, released)
                    series[s.series_uid] = s
    shared = _shared_lists(spec, collections, series)
    return Catalog(spec, collections, patients, studies, series, shared)


def new_series(spec: DatasetSpec, coll: CollectionInfo, patient: Patient, study: Study,
               salt: object, released: object) -> Series:
    s = dataset.make_series(spec, coll, study, salt, released)  # type: ignore[arg-type]
    identity = dataset.dicom_identity(patient, study, s)
    return replace(s, instances=dataset.initial_instances(spec, identity, s))


def _shared_lists(spec: DatasetSpec, collections: dict[str, CollectionInfo],
                  series: dict[str, Series]) -> dict[str, tuple[str, ...]]:
    """One shared cart per collection (getContentsByName), named like TCIA's carts."""
    out = {}
    for name in collections:
        digits = derive_uid(spec.seed, "cart", name)[-17:]
        uids = [u for u, s in series.items() if s.collection == name][::2][:5]
        out[f"nbia-{digits}"] = tuple(uids)
    return out
