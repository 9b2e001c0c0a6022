"""Small fakes behind the sync engine's ports, and a series of real DICOM files to serve.

No HTTP and no database: the client serves bytes from memory, the catalog records what
the job told it. The archive is a tmp_path, written by the job's real file-system steps.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import anyio

from mirror.archive import layout
from mirror.catalog.records import ClaimedSeries
from mirror.domain import InstanceRecord, PathName, SeriesState, Uid
from mirror.errors import MirrorError
from mirror.retry import RetryPolicy
from mirror.sync.job import JobContext
from mirror.tcia.streaming import Progress, Sink
from tests.transfer.conftest import UID_ROOT, dicom_bytes

STUDY = f"{UID_ROOT}.71.1"
SERIES = f"{UID_ROOT}.71.2"
OTHER_SERIES = f"{UID_ROOT}.71.9"


def sop(n: int) -> str:
    return f"{UID_ROOT}.71.3.{n}"


@dataclass
class Upstream:
    """What the server holds for :data:`SERIES`: *n* real (tiny) DICOM instances."""

    n: int = 4
    files: dict[str, bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.files = {sop(i): dicom_bytes(sop(i), SERIES, STUDY, pixels=16, seed=i)
                      for i in range(1, self.n + 1)}

    @property
    def file_size(self) -> int:
        return sum(len(b) for b in self.files.values())

    def zip(self) -> bytes:
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as zf:
            for uid, data in self.files.items():
                zf.writestr(f"1-{uid[-3:]}.dcm", data)
        return out.getvalue()

    def md5(self, uid: str) -> str:
        return hashlib.md5(self.files[uid]).hexdigest()


@dataclass
class FakeClient:
    """A :class:`mirror.sync.ports.SeriesSource` serving an :class:`Upstream`.

    *sop_error*: raised by getSOPInstanceUIDs; *single*: bytes served per SOP instead of
    the upstream's; *server_md5*: getMD5HashForImage's answers instead; *hang*: getImage
    waits until cancelled (after setting *started*).
    """

    upstream: Upstream
    has_md5: bool = False
    sop_error: MirrorError | None = None
    single: dict[str, bytes] = field(default_factory=dict)
    server_md5: dict[str, str] = field(default_factory=dict)
    hang: bool = False
    started: anyio.Event = field(default_factory=anyio.Event)
    calls: list[str] = field(default_factory=list)

    async def get_sop_instance_uids(self, series_uid: str) -> list[str]:
        self.calls.append("getSOPInstanceUIDs")
        if self.sop_error is not None:
            raise self.sop_error
        return list(self.upstream.files)

    async def get_md5_hash_for_image(self, sop_uid: str) -> str | None:
        self.calls.append("getMD5HashForImage")
        if sop_uid in self.server_md5:
            return self.server_md5[sop_uid]
        return self.upstream.md5(sop_uid) if sop_uid in self.upstream.files else None

    async def download_image(self, series_uid: str, sink: Sink, *, md5: bool = False,
                             progress: Progress | None = None) -> int:
        self.calls.append("getImage")
        self.started.set()
        if self.hang:
            await anyio.sleep_forever()
        data = self.upstream.zip()
        sink.write(data)
        return len(data)

    async def download_single_image(self, series_uid: str, sop_uid: str, sink: Sink,
                                    progress: Progress | None = None) -> int:
        self.calls.append("getSingleImage")
        data = self.single.get(sop_uid, self.upstream.files[sop_uid])
        sink.write(data)
        return len(data)


@dataclass
class FakeCatalog:
    """A :class:`mirror.sync.ports.JobCatalog` that records what the job told it."""

    known: list[InstanceRecord] = field(default_factory=list)
    fail_raises: MirrorError | None = None
    completed: list[tuple[str, Sequence[InstanceRecord]]] = field(default_factory=list)
    failed: list[tuple[str, datetime | None]] = field(default_factory=list)
    released: list[str] = field(default_factory=list)

    async def instances(self, series_uid: str) -> list[InstanceRecord]:
        return list(self.known)

    async def complete(self, series_uid: str, owner: str, *, local_path: str,
                       instances: Sequence[InstanceRecord],
                       verified_at: datetime | None = None) -> None:
        self.completed.append((local_path, instances))

    async def fail(self, series_uid: str, owner: str, *, error: str,
                   retry_at: datetime | None) -> SeriesState:
        if self.fail_raises is not None:
            raise self.fail_raises
        self.failed.append((error, retry_at))
        return SeriesState.QUEUED if retry_at else SeriesState.FAILED

    async def release(self, series_uid: str, owner: str) -> None:
        self.released.append(series_uid)


def claimed(upstream: Upstream, *, attempts: int = 1, **changes: object) -> ClaimedSeries:
    fields: dict[str, object] = dict(
        series_uid=SERIES, study_uid=STUDY, patient_id="P-1", collection="TEST",
        image_count=upstream.n, file_size=upstream.file_size, remote_timestamp=None,
        attempts=attempts, repair=False, local_path=None, local_instance_count=None,
        lease_expires_at=datetime(2026, 1, 1, tzinfo=UTC))
    fields.update(changes)
    return ClaimedSeries(**fields)  # type: ignore[arg-type]


def context(root: Path, client: FakeClient, catalog: FakeCatalog, *,
            policy: RetryPolicy | None = None, verify_md5: bool = False) -> JobContext:
    return JobContext(root=root, layout="uid", verify_md5=verify_md5, catalog=catalog,
                      client=client, owner="test-owner",
                      policy=policy or RetryPolicy(max_attempts=3))


def series_dir(root: Path) -> Path:
    return layout.series_dir(root, PathName("TEST"), PathName("P-1"), Uid(STUDY), Uid(SERIES))


def put_on_disk(root: Path, upstream: Upstream, uids: Sequence[str]) -> Path:
    """Store *uids* of *upstream* where the series lives, as a finished fetch would."""
    final = series_dir(root)
    final.mkdir(parents=True, exist_ok=True)
    for uid in uids:
        (final / f"{uid}.dcm").write_bytes(upstream.files[uid])
    return final
