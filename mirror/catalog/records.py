"""Plain values the catalog hands out (never ORM objects), and its own errors."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from mirror.domain import SeriesState
from mirror.errors import CatalogError


class LeaseLost(CatalogError):
    """The series lease is no longer ours (expired and reaped, or claimed elsewhere)."""


class NotInitialised(CatalogError):
    """The catalog schema is missing; run `tcia-mirror db upgrade`."""


@dataclass(frozen=True, slots=True)
class CollectionInfo:
    name: str
    watermark: date | None
    last_poll: datetime | None
    last_poll_ok: bool | None
    last_reconcile: datetime | None
    last_error: str | None


@dataclass(frozen=True, slots=True)
class SeriesSnapshot:
    """What the planner needs to compare a listing with the catalog."""

    series_uid: str
    state: SeriesState
    image_count: int | None
    file_size: int | None
    remote_timestamp: datetime | None
    local_instance_count: int | None
    local_bytes: int | None
    attempts: int


@dataclass(frozen=True, slots=True)
class ClaimedSeries:
    """A series leased to a worker.

    ``attempts`` already counts this attempt (1 on the first claim); ``release``
    gives it back, an expired lease does not (a series that crashes its worker must
    eventually give up).
    """

    series_uid: str
    study_uid: str
    patient_id: str
    collection: str
    image_count: int | None
    file_size: int | None
    remote_timestamp: datetime | None
    attempts: int
    repair: bool
    local_path: str | None
    local_instance_count: int | None
    lease_expires_at: datetime
    #: for the ``descriptive`` archive layout (study date and descriptions live in raw)
    series_number: int | None = None
    description: str | None = None
    raw: dict[str, Any] | None = None
    #: why discovery (re)queued it ("hash mismatch": compare instance MD5s with the server)
    queue_reason: str | None = None


@dataclass(frozen=True, slots=True)
class SeriesRow:
    """Every column of a series, with its collection, patient and study spelled out."""

    series_uid: str
    study_uid: str
    patient_id: str
    collection: str
    modality: str | None
    image_count: int | None
    file_size: int | None
    remote_timestamp: datetime | None
    date_released: datetime | None
    series_number: int | None
    description: str | None
    raw: dict[str, Any] | None
    discovered_at: datetime
    state: SeriesState
    attempts: int
    next_attempt_at: datetime | None
    lease_owner: str | None
    lease_expires_at: datetime | None
    last_error: str | None
    queue_reason: str | None
    repair: bool
    needs_refetch: bool
    local_path: str | None
    local_bytes: int | None
    local_instance_count: int | None
    verified_at: datetime | None
    sop_class_uid: str | None = None
