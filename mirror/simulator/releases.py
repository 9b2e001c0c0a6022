"""Releases over time: new patients, studies and series, revised and withdrawn series.

:func:`apply` is pure: it returns the next catalog (metadata only), a summary, and the
series whose files must be written before the new catalog may be served.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta

from mirror.errors import UsageError
from mirror.simulator import dataset
from mirror.simulator.catalog import Catalog, new_series
from mirror.simulator.model import Series, digest


@dataclass(frozen=True)
class ReleaseSummary:
    on: date
    new_series_uids: tuple[str, ...] = ()
    revised_series_uids: tuple[str, ...] = ()
    withdrawn_series_uids: tuple[str, ...] = ()
    #: Same ImageCount, FileSize, SOP UIDs and dates; one image's bytes differ.
    silent_revised_series_uids: tuple[str, ...] = ()
    new_patient_ids: tuple[str, ...] = ()
    new_study_uids: tuple[str, ...] = ()


@dataclass
class _Draft:
    """The catalog under construction during one release."""

    cat: Catalog
    tag: str
    on: date
    rng: random.Random
    targets: list[str]

    def __post_init__(self) -> None:
        self.patients = dict(self.cat.patients)
        self.studies = dict(self.cat.studies)
        self.series = dict(self.cat.series)
        self.old = list(self.cat.series.values())  # candidates for revision/withdrawal
        self.added: list[Series] = []
        self.new_patients: list[str] = []
        self.new_studies: list[str] = []

    def add_study_series(self, study_uid: str, count: int, salt: str) -> None:
        study = self.studies[study_uid]
        coll = self.cat.collections[study.collection]
        for k in range(count):
            s = new_series(self.cat.spec, coll, self.patients[study.patient_id], study,
                           f"{salt}-{k}", self.on)
            self.series[s.series_uid] = s
            self.added.append(s)


def apply(cat: Catalog, on: date, *, new_patients: int = 0, new_studies: int = 0,
          new_series: int = 0, revised: int = 0, withdrawn: int = 0,
          collection: str | None = None, silent_revised: int = 0,
          silent_series: tuple[str, ...] | list[str] = ()
          ) -> tuple[Catalog, ReleaseSummary, list[Series]]:
    if collection is not None and collection not in cat.collections:
        raise UsageError(f"unknown collection {collection!r}")
    number = cat.releases + 1
    tag = f"r{number}-{on.isoformat()}-{new_patients}-{new_studies}-{new_series}-{revised}"
    if silent_revised or silent_series:  # keeps every older tag (and its UIDs) unchanged
        tag += f"-s{silent_revised}-{len(silent_series)}"
    d = _Draft(cat, tag, on, dataset.rng_for(cat.spec.seed, tag, collection),
               [collection] if collection else list(cat.collections))
    d.old = [s for s in d.old if s.collection in d.targets]
    silent = _named(d, silent_series)
    _add_patients(d, new_patients)
    _add_studies(d, new_studies)
    _add_series(d, new_series)
    revised_series = _revise(d, revised)
    silent = _revise_silently(d, [*silent, *_pick(d, silent_revised)])
    gone = _withdraw(d, withdrawn)
    out = replace(cat, patients=d.patients, studies=d.studies, series=d.series,
                  releases=number)
    summary = ReleaseSummary(on, tuple(s.series_uid for s in d.added),
                             tuple(s.series_uid for s in revised_series), tuple(gone),
                             tuple(s.series_uid for s in silent),
                             tuple(d.new_patients), tuple(d.new_studies))
    return out, summary, [*d.added, *revised_series, *silent]


def _add_patients(d: _Draft, count: int) -> None:
    spec = d.cat.spec
    for _ in range(count):
        coll = d.cat.collections[d.rng.choice(d.targets)]
        number = 1 + sum(1 for p in d.patients.values() if p.collection == coll.name)
        patient = dataset.make_patient(spec, coll, number)
        d.patients[patient.patient_id] = patient
        d.new_patients.append(patient.patient_id)
        for sn in range(spec.studies):
            study = dataset.make_study(spec, patient, f"{d.tag}-{sn}")
            d.studies[study.study_uid] = study
            d.new_studies.append(study.study_uid)
            d.add_study_series(study.study_uid, spec.series, f"{d.tag}-{sn}")


def _add_studies(d: _Draft, count: int) -> None:
    visible = sorted({s.patient_id for s in d.old})
    for k in range(count if visible else 0):
        patient = d.patients[d.rng.choice(visible)]
        study = dataset.make_study(d.cat.spec, patient, f"{d.tag}-study-{k}")
        d.studies[study.study_uid] = study
        d.new_studies.append(study.study_uid)
        d.add_study_series(study.study_uid, d.cat.spec.series, f"{d.tag}-study-{k}")


def _add_series(d: _Draft, count: int) -> None:
    studies = sorted({s.study_uid for s in d.old})
    for k in range(count if studies else 0):
        d.add_study_series(d.rng.choice(studies), 1, f"{d.tag}-series-{k}")


def _pick(d: _Draft, count: int) -> list[Series]:
    if count > len(d.old):
        raise UsageError(f"release wants {count} existing series, only {len(d.old)} visible")
    chosen = d.rng.sample(d.old, count)
    d.old = [s for s in d.old if s not in chosen]
    return chosen


def _revise(d: _Draft, count: int) -> list[Series]:
    """Replace the first instance (new SOP UID, new bytes) and append one more."""
    out = []
    for s in _pick(d, count):
        _coll, patient, study = d.cat.context(s)
        identity = dataset.dicom_identity(patient, study, s)
        spec, ordered = d.cat.spec, sorted(s.instances, key=lambda i: i.instance_number)
        first, last = ordered[0], ordered[-1]
        fresh = dataset.make_instance(spec, identity, s, first.instance_number,
                                      first.acquisition_number, d.tag)
        extra = dataset.make_instance(spec, identity, s, last.instance_number + 1,
                                      last.acquisition_number, d.tag)
        stamp = datetime.combine(d.on - timedelta(days=1), time(9, 30, s.version % 60))
        new = replace(s, instances=(fresh, *ordered[1:], extra), version=s.version + 1,
                      date_released=d.on, timestamp=stamp)
        d.series[s.series_uid] = new
        out.append(new)
    return out


def _named(d: _Draft, uids: tuple[str, ...] | list[str]) -> list[Series]:
    """Series revised by name: taken out of the random picks of this release."""
    chosen = []
    for uid in uids:
        s = d.cat.series.get(uid)
        if s is None:
            raise UsageError(f"unknown or withdrawn series {uid!r}")
        chosen.append(s)
    d.old = [s for s in d.old if s.series_uid not in set(uids)]
    return chosen


def _revise_silently(d: _Draft, chosen: list[Series]) -> list[Series]:
    """New bytes for the first image, nothing else changes (a corrected header byte).

    Same SOP UID, same size (the pixel noise comes from the blob key, the header and the
    pixel count stay), same dates: only getMD5Hierarchy and the MD5s can tell.
    """
    out = []
    for s in chosen:
        ordered = sorted(s.instances, key=lambda i: i.instance_number)
        first = ordered[0]
        fresh = replace(first, blob=digest(first.blob, "silent", d.tag), size=0, md5="")
        new = replace(s, instances=tuple(fresh if i is first else i for i in s.instances),
                      version=s.version + 1)
        d.series[s.series_uid] = new
        out.append(new)
    return out


def _withdraw(d: _Draft, count: int) -> list[str]:
    gone = [s.series_uid for s in _pick(d, count)]
    for uid in gone:
        del d.series[uid]
    return gone
