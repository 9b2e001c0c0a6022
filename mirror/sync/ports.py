"""The ports of the sync engine: what the per-series job, the pool and the hash check
ask of the TCIA client, the catalog and the progress display, as Protocols.

The real :class:`mirror.tcia.TciaClient` and :class:`mirror.catalog.Catalog` satisfy
them (checked by mypy in tests/sync/test_ports.py); the table tests of the job put small
fakes behind the same Protocols. :data:`EVERYTHING` is the explicit "every collection".
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from mirror.catalog.hashstate import HashRow, HashState
    from mirror.catalog.records import ClaimedSeries, SeriesRow
    from mirror.catalog.store import Scope
    from mirror.domain import InstanceRecord, SeriesState
    from mirror.tcia.streaming import Progress, Sink


class Everything(enum.Enum):
    """The scope of a pool that works on every collection in the catalog."""

    EVERYTHING = "everything"


EVERYTHING = Everything.EVERYTHING


class SeriesSource(Protocol):
    """The client calls of the per-series job."""

    @property
    def has_md5(self) -> bool: ...

    async def get_sop_instance_uids(self, series_uid: str) -> list[str]: ...

    async def get_md5_hash_for_image(self, sop_uid: str) -> str | None: ...

    async def download_image(self, series_uid: str, sink: Sink, *, md5: bool = False,
                             progress: Progress | None = None) -> int: ...

    async def download_single_image(self, series_uid: str, sop_uid: str, sink: Sink,
                                    progress: Progress | None = None) -> int: ...


class HashSource(Protocol):
    """The client call of the MD5-hierarchy check."""

    async def md5_hierarchy(self, *, collection: str | None = None,
                            patient_id: str | None = None, study_uid: str | None = None,
                            series_uid: str | None = None) -> str: ...


class Limiter(Protocol):
    """A rate limiter: ``acquire`` returns when the next request may go."""

    async def acquire(self) -> None: ...


class JobCatalog(Protocol):
    """The catalog calls of the per-series job."""

    async def instances(self, series_uid: str) -> list[InstanceRecord]: ...

    async def complete(self, series_uid: str, owner: str, *, local_path: str,
                       instances: Sequence[InstanceRecord],
                       verified_at: datetime | None = None) -> None: ...

    async def fail(self, series_uid: str, owner: str, *, error: str,
                   retry_at: datetime | None) -> SeriesState: ...

    async def release(self, series_uid: str, owner: str) -> None: ...


class PoolCatalog(JobCatalog, Protocol):
    """The catalog calls of the pool (claims, leases, the queue's horizon) and its jobs."""

    async def claim(self, owner: str, limit: int, *, lease_seconds: float,
                    collections: Sequence[str] | Scope | None = None,
                    now: datetime | None = None) -> list[ClaimedSeries]: ...

    async def heartbeat(self, owner: str, series_uids: Sequence[str], *,
                        lease_seconds: float) -> set[str]: ...

    async def reap_expired(self, now: datetime | None = None) -> int: ...

    async def pending(self, collections: Sequence[str] | Scope | None = None) -> int: ...

    async def next_due(self, collections: Sequence[str] | Scope | None = None,
                       ) -> datetime | None: ...

    def iter_series(self, *, states: Sequence[SeriesState],
                    collections: Sequence[str] | Scope | None = None,
                    batch: int = 1000) -> AsyncIterator[SeriesRow]: ...


class HashCatalog(Protocol):
    """The catalog calls of the MD5-hierarchy check."""

    async def hash_state(self, collection: str) -> HashState | None: ...

    async def save_hash_progress(self, collection: str, *, started_at: datetime,
                                 cursor: str | None, changed: int) -> None: ...

    async def hash_patients(self, collection: str, *, after: str | None,
                            limit: int) -> list[str]: ...

    async def hash_rows(self, collection: str, patient_ids: Sequence[str],
                        ) -> list[HashRow]: ...

    async def requeue(self, series_uids: Sequence[str], *, reason: str,
                      repair: bool = False) -> int: ...

    async def finish_hash_pass(self, collection: str, *, at: datetime,
                               changed: int) -> None: ...


class ProgressDisplay(Protocol):
    """Where a run shows bytes arriving: one callback per series (None: not shown)."""

    def callback(self, item: ClaimedSeries) -> Callable[[int], None] | None: ...
