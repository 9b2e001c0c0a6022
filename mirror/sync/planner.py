"""Pure planning: a remote listing x a catalog snapshot -> add / refetch / repair / retire.

The scheduler feeds listings in batches (a full NLST listing is never held whole), so
the planner works per batch and decides retirements once, from the set of UIDs seen.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from mirror.domain import RemoteSeries, SeriesState


class Snapshot(Protocol):
    """What the planner needs to know about a series the catalog already has."""

    @property
    def state(self) -> SeriesState: ...
    @property
    def image_count(self) -> int | None: ...
    @property
    def file_size(self) -> int | None: ...
    @property
    def remote_timestamp(self) -> datetime | None: ...
    @property
    def local_instance_count(self) -> int | None: ...


@dataclass
class Plan:
    """Series UIDs per action, and the bytes they will cost (FileSize as listed)."""

    add: list[str] = field(default_factory=list)
    refetch: list[str] = field(default_factory=list)
    repair: list[str] = field(default_factory=list)
    retire: list[str] = field(default_factory=list)
    unchanged: int = 0
    bytes_to_fetch: int = 0
    #: retirements refused because they exceeded max_delete_fraction
    retire_held_back: int = 0
    #: listed series outside the [sync] filters (never fetched, never retired), and how
    #: many of those the archive already holds from a wider filter (kept as they are)
    out_of_scope: int = 0
    out_of_scope_kept: int = 0
    #: listing rows recorded as failed (a bad field) and rows skipped (no valid series UID)
    bad_rows: int = 0
    skipped_rows: int = 0

    def merge(self, other: Plan) -> Plan:
        return Plan(
            add=self.add + other.add,
            refetch=self.refetch + other.refetch,
            repair=self.repair + other.repair,
            retire=self.retire + other.retire,
            unchanged=self.unchanged + other.unchanged,
            bytes_to_fetch=self.bytes_to_fetch + other.bytes_to_fetch,
            retire_held_back=self.retire_held_back + other.retire_held_back,
            out_of_scope=self.out_of_scope + other.out_of_scope,
            out_of_scope_kept=self.out_of_scope_kept + other.out_of_scope_kept,
            bad_rows=self.bad_rows + other.bad_rows,
            skipped_rows=self.skipped_rows + other.skipped_rows,
        )

    def summary(self) -> dict[str, int]:
        return {
            "add": len(self.add), "refetch": len(self.refetch), "repair": len(self.repair),
            "retire": len(self.retire), "unchanged": self.unchanged,
            "bytes": self.bytes_to_fetch, "retire_held_back": self.retire_held_back,
            "out_of_scope": self.out_of_scope, "out_of_scope_kept": self.out_of_scope_kept,
            "bad_rows": self.bad_rows, "skipped_rows": self.skipped_rows,
        }


#: Dialects whose listings give timestamps to the day only (v4: ``MM-DD-YYYY``).
DAY_ONLY_APIS = frozenset({"nbia-v4"})


def day_only(api: str) -> bool:
    """Whether the dialect *api* lists timestamps without a time of day."""
    return api in DAY_ONLY_APIS


def same_time(new: datetime, old: datetime, *, day_only: bool = False) -> bool:
    """Whether two listed timestamps agree at the granularity both of them carry.

    A day-only dialect (v4) compares calendar days. A value at exactly midnight may
    have come from a day-only dialect (a catalog filled through v4, now read through
    v1, or the other way round), so it too is compared by day: switching dialects
    must not make every series look changed. Otherwise the comparison is exact.
    """
    if day_only or _midnight(new) or _midnight(old):
        return new.date() == old.date()
    return new == old


def _midnight(value: datetime) -> bool:
    return (value.hour, value.minute, value.second, value.microsecond) == (0, 0, 0, 0)


def changed(remote: RemoteSeries, known: Snapshot, *, day_only: bool = False) -> bool:
    """True when upstream ImageCount, FileSize or timestamp differ from what we recorded.

    A field missing on either side (v3 has no FileSize or timestamp) is not evidence
    of change; timestamps are compared as :func:`same_time` says.
    """
    pairs = (
        (remote.image_count, known.image_count),
        (remote.file_size, known.file_size),
    )
    if any(new is not None and old is not None and new != old for new, old in pairs):
        return True
    new_ts, old_ts = remote.timestamp, known.remote_timestamp
    return (new_ts is not None and old_ts is not None
            and not same_time(new_ts, old_ts, day_only=day_only))


def plan_batch(listing: Iterable[RemoteSeries], snapshot: Mapping[str, Snapshot], *,
               day_only: bool = False) -> Plan:
    """Decide what to do with each listed series, given what the catalog knows.

    *day_only*: the listing comes from a dialect whose timestamps carry no time of day.
    """
    plan = Plan()
    for remote in listing:
        known = snapshot.get(remote.series_uid)
        size = remote.file_size or 0
        if known is None or known.state is SeriesState.RETIRED:
            plan.add.append(remote.series_uid)
            plan.bytes_to_fetch += size
        elif known.state in (SeriesState.QUEUED, SeriesState.FETCHING):
            plan.unchanged += 1  # already on its way; upsert refreshes the metadata
        elif changed(remote, known, day_only=day_only) or (
            known.state is SeriesState.DONE and remote.image_count is not None
            and known.local_instance_count != remote.image_count
        ):
            if known.state is SeriesState.DONE and (known.local_instance_count or 0) > 0:
                plan.repair.append(remote.series_uid)
            else:
                plan.refetch.append(remote.series_uid)
            plan.bytes_to_fetch += size
        else:
            plan.unchanged += 1
    return plan


def plan_retirements(
    active: Collection[str],
    seen: Collection[str],
    *,
    max_delete_fraction: float,
) -> Plan:
    """Series the catalog holds (not retired) that a full listing no longer shows.

    Never more than ``max_delete_fraction`` of the collection in one pass: a listing
    that lost half the collection is more likely an upstream accident than a real
    withdrawal, so then nothing is retired and the count is reported instead.
    """
    gone = sorted(uid for uid in active if uid not in seen)
    if not gone:
        return Plan()
    if len(gone) > max_delete_fraction * max(len(active), 1):
        return Plan(retire_held_back=len(gone))
    return Plan(retire=gone)
