"""Pure: the MD5 hierarchy of a patient (series, studies, patient) from the catalog's rows.

The server's getMD5Hierarchy hashes the per-image MD5 strings exactly as it stores them
(:mod:`mirror.merkle`). The catalog keeps our own MD5 of every file and, only where the
server's string differs from it, that string (``""`` standing for none: NULL upstream).
This module rebuilds the server's view from those rows, and decides how much of a
collection a rolling scrub checks per poll.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from mirror import merkle
from mirror.domain import SeriesState


def image_string(md5: str, server_md5: str | None) -> str | None:
    """The per-image string the server hashes: its own where recorded, else ours.

    ``""`` recorded means the server has no MD5 for the image (NULL, hashed as "null").
    """
    if server_md5 is None:
        return md5
    return server_md5 or None


@dataclass
class PatientTree:
    """One patient's studies and series with the image strings each series hashes."""

    patient_id: str
    #: study UID -> series UID -> image strings (None: no MD5 upstream)
    studies: dict[str, dict[str, list[str | None]]] = field(default_factory=dict)
    states: dict[str, SeriesState] = field(default_factory=dict)

    def series_hash(self, study_uid: str, series_uid: str) -> str:
        return merkle.series_hash(self.studies[study_uid][series_uid])

    def study_hash(self, study_uid: str) -> str:
        return merkle.combine(self.series_hash(study_uid, s) for s in self.studies[study_uid])

    def patient_hash(self) -> str:
        return merkle.combine(self.study_hash(t) for t in self.studies)


class Row(Protocol):
    """One stored instance of a patient's series (sop_uid None: a series with none yet)."""

    @property
    def patient_id(self) -> str: ...

    @property
    def study_uid(self) -> str: ...

    @property
    def series_uid(self) -> str: ...

    @property
    def state(self) -> SeriesState: ...

    @property
    def sop_uid(self) -> str | None: ...

    @property
    def md5(self) -> str | None: ...

    @property
    def server_md5(self) -> str | None: ...


def build_trees(rows: Iterable[Row]) -> dict[str, PatientTree]:
    """Patient ID -> tree, from the catalog's rows (:class:`Row`)."""
    trees: dict[str, PatientTree] = {}
    for row in rows:
        tree = trees.setdefault(row.patient_id, PatientTree(row.patient_id))
        images = tree.studies.setdefault(row.study_uid, {}).setdefault(row.series_uid, [])
        tree.states[row.series_uid] = row.state
        if row.sop_uid is not None and row.md5 is not None:
            images.append(image_string(row.md5, row.server_md5))
    return trees


def collection_hash(patient_hashes: Iterable[str]) -> str:
    """The collection level: its patients' hashes combined (the server caches this one)."""
    return merkle.combine(patient_hashes)


def scrub_quota(total_patients: int, *, done: int, since_start: float,
                reconcile_interval: float) -> int:
    """Patients the rolling scrub checks now so that a pass started *since_start*
    seconds ago, having checked *done* patients, covers all of them in one
    *reconcile_interval*: the share of the interval gone by, minus what is done.

    Nothing at the start of a pass, so a sync run right after another costs no hash
    request; a pass late by more than the interval checks everything left."""
    if total_patients <= 0 or reconcile_interval <= 0:
        return max(total_patients - done, 0)
    share = min(max(since_start, 0.0) / reconcile_interval, 1.0)
    return max(math.ceil(total_patients * share) - done, 0)
