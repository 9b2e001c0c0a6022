"""The MD5-hierarchy check (NBIA v4 getMD5Hierarchy): find series revised in place.

v4 lists dates to the day only, so a series revised on its release day, or with the
same ImageCount and FileSize, shows in no listing. The server hashes what it holds
(tcia-api-v4.md section 1); we hash what the catalog holds (:mod:`mirror.sync.hashtree`) and
compare, patient by patient (the patient level is computed live), descending to the
studies and series only where the hashes differ. A changed series is re-queued with
the reason :data:`HASH_REASON`, which makes its fetch compare every instance's MD5
with the server's (:func:`suspect_instances`), not only the set of SOP UIDs.

Cost: one request per patient whose hash agrees; where it differs, one more per study
of that patient, and one more per series of each differing study. Requests go through
a rate limiter (``[sync] hash_requests_per_second``). A pass may stop after a quota of
patients (the rolling scrub) and resume from its cursor at the next poll.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from mirror import logs, merkle
from mirror.domain import JsonObject, SeriesState
from mirror.errors import MirrorError, SourceError
from mirror.sync import hashtree
from mirror.sync.ports import HashCatalog, HashSource, Limiter, SeriesSource

if TYPE_CHECKING:
    from mirror.catalog.records import ClaimedSeries
    from mirror.domain import InstanceRecord
    from mirror.transfer import ExtractResult

#: queue_reason of a series whose hash differs from the server's.
HASH_REASON = "hash mismatch"
#: Patients read from the catalog (and checked) per step; progress is saved after each.
WINDOW = 200
#: Above this many stored instances, a suspect series is re-fetched whole (its ZIP's
#: md5hashes.csv checks every file) instead of asking getMD5HashForImage per instance.
PROBE_MAX = 64

_HASH = re.compile(r"^[0-9a-f]{32}$")


@dataclass
class HashReport:
    """What one hash pass (or one step of a rolling scrub) did and found."""

    collection: str
    patients: int = 0  #: patients compared
    requests: int = 0  #: getMD5Hierarchy requests made
    changed: list[str] = field(default_factory=list)  #: series found changed
    #: the server's cached collection hash vs ours: "differs" proves a change somewhere,
    #: "equal" proves nothing (cached up to a day); "unknown" when not compared
    hint: str = "unknown"
    complete: bool = False  #: the pass covered every patient
    error: str | None = None

    def summary(self) -> JsonObject:
        return {"patients": self.patients, "requests": self.requests,
                "changed": len(self.changed), "collection_hint": self.hint,
                "complete": self.complete, **({"error": self.error} if self.error else {})}


def supported(client: object) -> bool:
    """Whether *client* speaks a dialect with getMD5Hierarchy (NBIA v4); a capability probe:
    a client without the property has no such endpoint."""
    return bool(getattr(client, "has_md5_hierarchy", False))


async def check_collection(client: HashSource, catalog: HashCatalog, collection: str, *,
                           limiter: Limiter,
                           now: datetime, quota: int | None = None,
                           dry_run: bool = False) -> HashReport:
    """Compare a collection's hashes with the server's; re-queue the series that differ.

    ``quota=None``: a full pass from the first patient. Otherwise continue the pass under
    way for at most *quota* patients (the rolling scrub).
    """
    report = HashReport(collection)
    state = await catalog.hash_state(collection)
    resume = quota is not None and state is not None and state.pass_started_at is not None
    started, cursor, found = now, None, 0
    if resume and state is not None and state.pass_started_at is not None:
        started, cursor, found = state.pass_started_at, state.cursor, state.pass_changed
    local_patients: list[str] = []  # patient hashes, only when the pass starts at the top
    if quota is not None and not resume and not dry_run:  # the scrub's clock starts now
        await catalog.save_hash_progress(collection, started_at=started, cursor=None,
                                         changed=0)
    server_top = await _collection_hint(client, limiter, collection, report) if (
        quota is None) else None
    try:
        while quota is None or report.patients < quota:
            room = WINDOW if quota is None else min(WINDOW, quota - report.patients)
            patients = await catalog.hash_patients(collection, after=cursor, limit=room)
            if patients:
                trees = hashtree.build_trees(await catalog.hash_rows(collection, patients))
                changed = await _check_window(client, limiter, collection, trees, patients,
                                              report, local_patients)
                found += len(changed)
                if changed and not dry_run:
                    await catalog.requeue(changed, reason=HASH_REASON, repair=True)
                cursor = patients[-1]
            if len(patients) < room:
                report.complete = True
                break
            if not dry_run:
                await catalog.save_hash_progress(collection, started_at=started,
                                                 cursor=cursor, changed=found)
        if not report.complete and not await catalog.hash_patients(collection, after=cursor,
                                                                   limit=1):
            report.complete = True  # the quota ended exactly at the last patient
    except SourceError:
        raise
    except MirrorError as exc:
        report.error = f"{type(exc).__name__}: {exc}"
        logs.get().warning("hash check stopped", collection=collection, error=report.error)
    if report.complete and not dry_run:
        await catalog.finish_hash_pass(collection, at=now, changed=found)
    elif not dry_run and report.patients:
        await catalog.save_hash_progress(collection, started_at=started, cursor=cursor,
                                         changed=found)
    if server_top is not None and report.complete and not report.error:
        ours = hashtree.collection_hash(local_patients)
        report.hint = "equal" if server_top == ours else "differs"
    return report


async def _collection_hint(client: HashSource, limiter: Limiter, collection: str,
                           report: HashReport) -> str | None:
    """The server's cached collection hash, compared with ours once the pass is done."""
    try:
        return await _ask(client, limiter, report, collection=collection)
    except SourceError:
        raise
    except MirrorError:
        return None


async def _check_window(client: HashSource, limiter: Limiter, collection: str,
                        trees: dict[str, hashtree.PatientTree], patients: list[str],
                        report: HashReport, local_patients: list[str]) -> list[str]:
    changed: list[str] = []
    for patient_id in patients:
        tree = trees.get(patient_id)
        if tree is None or not patient_id.strip():
            continue  # a blank ID would ask for the collection's hash instead
        ours = tree.patient_hash()
        local_patients.append(ours)
        report.patients += 1
        theirs = await _ask(client, limiter, report, collection=collection,
                            patient_id=patient_id)
        if theirs is None or theirs == ours:
            continue
        for study_uid in tree.studies:
            theirs = await _ask(client, limiter, report, study_uid=study_uid)
            if theirs is None or theirs == tree.study_hash(study_uid):
                continue
            for series_uid in tree.studies[study_uid]:
                if tree.states.get(series_uid) is not SeriesState.DONE:
                    continue  # already on its way, or failed: the queue owns it
                theirs = await _ask(client, limiter, report, series_uid=series_uid)
                # "" means the server has no images for it: gone, a listing retires it
                if theirs and theirs != tree.series_hash(study_uid, series_uid):
                    changed.append(series_uid)
    report.changed.extend(changed)
    if changed:
        logs.get().info("hash check found changed series", collection=collection,
                        series=len(changed))
    return changed


async def _ask(client: HashSource, limiter: Limiter, report: HashReport,
               **level: str) -> str | None:
    """One getMD5Hierarchy request; the hash, "" for none, None for an unusable answer."""
    await limiter.acquire()
    report.requests += 1
    answer = await client.md5_hierarchy(**level)
    value = (answer or "").strip().lower()
    if value and not _HASH.match(value):
        logs.get().warning("getMD5Hierarchy answered something that is not an MD5",
                           **level, answer=value[:80])
        return None
    return value


async def suspect_instances(client: SeriesSource, item: ClaimedSeries,
                            known: Mapping[str, InstanceRecord],
                            ) -> tuple[set[str] | None, dict[str, str]]:
    """For a series queued because its hash differs: (SOP UIDs whose stored MD5 differs
    from the server's, the server's strings that differ from ours only in spelling).

    A revision may keep an instance's SOP UID and change its bytes: comparing UID sets
    would adopt the old file. Asks getMD5HashForImage once per stored instance; with
    more than :data:`PROBE_MAX` of them the answer is None: the whole ZIP, whose
    md5hashes.csv checks every file, is cheaper. Any other series: nothing suspect.
    """
    spelled: dict[str, str] = {}
    if item.queue_reason != HASH_REASON:
        return set(), spelled
    if not known or len(known) > PROBE_MAX:
        return None, spelled
    suspects: set[str] = set()
    for sop, record in known.items():
        theirs = await client.get_md5_hash_for_image(sop)
        if theirs is None or not theirs.strip():
            continue  # unknown upstream: count, size and DICOM checks decide
        if not merkle.md5_equal(theirs, record.md5):
            suspects.add(sop)
        elif theirs != record.md5:
            spelled[sop] = theirs
    return suspects, spelled


def server_strings(result: ExtractResult) -> dict[str, str]:
    """SOP UID -> the server's MD5 string where md5hashes.csv spells it unlike our
    digest ("" for an empty field: NULL upstream), for the hierarchy check."""
    ours = {i.sop_uid: i.md5 for i in result.instances}
    stored = result.server_md5
    return {sop: theirs or "" for sop, theirs in stored.items()
            if sop in ours and theirs != ours[sop]}
