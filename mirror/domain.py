"""Value types shared by every layer: remote records, series states and their transitions."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from mirror.errors import IllegalTransition


class SeriesState(enum.StrEnum):
    """Where a series is in its life; changed only through :func:`transition`."""

    QUEUED = "queued"  #: wanted: to be fetched (fully or repaired) when due
    FETCHING = "fetching"  #: leased by a worker that is downloading it
    DONE = "done"  #: verified and committed on disk
    FAILED = "failed"  #: failed for good (permanent error or attempts exhausted)
    RETIRED = "retired"  #: gone upstream; files kept unless on_remote_delete = "delete"


class Event(enum.StrEnum):
    """What happened to a series."""

    DISCOVER = "discover"  #: new or changed upstream, or found damaged: (re)queue
    CLAIM = "claim"  #: a worker took the lease
    COMPLETE = "complete"  #: verified and committed
    RETRY = "retry"  #: transient failure, lease lost or shutdown: back to the queue
    GIVE_UP = "give_up"  #: permanent failure
    RETIRE = "retire"  #: gone upstream


S, E = SeriesState, Event

#: (state, event) -> new state. Anything not in the table is illegal.
TRANSITIONS: dict[tuple[SeriesState, Event], SeriesState] = {
    (S.QUEUED, E.DISCOVER): S.QUEUED,
    (S.QUEUED, E.CLAIM): S.FETCHING,
    (S.QUEUED, E.RETIRE): S.RETIRED,
    (S.QUEUED, E.GIVE_UP): S.FAILED,
    (S.FETCHING, E.COMPLETE): S.DONE,
    (S.FETCHING, E.RETRY): S.QUEUED,
    (S.FETCHING, E.GIVE_UP): S.FAILED,
    (S.FETCHING, E.DISCOVER): S.FETCHING,
    (S.DONE, E.DISCOVER): S.QUEUED,
    (S.DONE, E.RETIRE): S.RETIRED,
    (S.FAILED, E.DISCOVER): S.QUEUED,
    (S.FAILED, E.RETIRE): S.RETIRED,
    (S.RETIRED, E.DISCOVER): S.QUEUED,
    (S.RETIRED, E.RETIRE): S.RETIRED,
}


def transition(state: SeriesState | str, event: Event | str) -> SeriesState:
    """Return the state after *event*; raise :class:`IllegalTransition` if forbidden."""
    try:
        return TRANSITIONS[(SeriesState(state), Event(event))]
    except (KeyError, ValueError) as exc:
        raise IllegalTransition(f"series cannot go from {state!s} on {event!s}") from exc


def sources_of(event: Event) -> tuple[SeriesState, ...]:
    """The states from which *event* is legal (used to build guarded SQL updates)."""
    return tuple(s for (s, e) in TRANSITIONS if e == event)


@dataclass(frozen=True, slots=True)
class RemotePatient:
    collection: str
    patient_id: str
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class RemoteStudy:
    collection: str
    patient_id: str
    study_uid: str
    study_date: date | None = None
    series_count: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class RemoteSeries:
    """One row of getSeries, normalised across dialects (raw fields kept for provenance)."""

    series_uid: str
    study_uid: str
    patient_id: str
    collection: str
    modality: str | None = None
    image_count: int | None = None
    file_size: int | None = None
    timestamp: datetime | None = None  # TimeStamp (v1) / MaxSubmissionTimestamp (v4)
    date_released: datetime | None = None
    series_number: int | None = None
    description: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    body_part: str | None = None  # BodyPartExamined: used by [sync] body_parts filters


@dataclass(frozen=True, slots=True)
class SeriesSize:
    total_bytes: int | None
    object_count: int | None


@dataclass(frozen=True, slots=True)
class InstanceRecord:
    """One stored DICOM file of a committed series."""

    sop_uid: str
    path: str  # relative to the archive root
    size: int
    md5: str
    #: the server's per-image MD5 string where it is not exactly ``md5`` ("" = none)
    server_md5: str | None = None
