"""SQLAlchemy models of the catalog: what upstream has, what is on disk, what is due.

Alembic migrations are the only way this schema reaches a database; a test checks that
autogenerate finds nothing between these models and ``migrations/versions``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from mirror.domain import SeriesState

#: Deterministic constraint names, so migrations can refer to them on every database.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: 64-bit keys on Postgres (tens of millions of instances); SQLite needs plain INTEGER
#: for the column to alias the rowid and autoincrement.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both databases.

    Postgres keeps ``timestamptz``; SQLite has no time zones, so values are stored as
    naive UTC text (fixed width, so ``<=`` compares correctly) and come back aware.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given to the catalog; use UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class StateType(TypeDecorator[SeriesState]):
    """A :class:`SeriesState` stored as its short string value."""

    impl = String(16)
    cache_ok = True

    def process_bind_param(self, value: SeriesState | str | None, dialect: Dialect) -> str | None:
        return None if value is None else SeriesState(value).value

    def process_result_value(self, value: str | None, dialect: Dialect) -> SeriesState | None:
        return None if value is None else SeriesState(value)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Collection(Base):
    """A TCIA collection we mirror, with its polling bookkeeping."""

    __tablename__ = "collections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(256), unique=True)
    #: newest day whose discoveries are all recorded (polls ask from here - overlap)
    watermark: Mapped[date | None] = mapped_column(Date)
    last_poll_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_poll_ok: Mapped[bool | None] = mapped_column(Boolean)
    last_reconcile_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    #: the ``[sources.NAME]`` the collection is mirrored from; NULL: the default [source]
    source: Mapped[str | None] = mapped_column(String(64))
    # --- MD5 hierarchy check (getMD5Hierarchy; nbia-v4) ---
    #: when the last complete pass over every patient finished
    hash_checked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    #: series the last complete pass found changed (and re-queued)
    hash_changed: Mapped[int | None] = mapped_column(Integer)
    #: rolling scrub: when the pass under way started, the last patient it checked,
    #: and the changed series it found so far
    hash_pass_started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    hash_cursor: Mapped[str | None] = mapped_column(String(256))
    hash_pass_changed: Mapped[int | None] = mapped_column(Integer)


class Patient(Base):
    __tablename__ = "patients"
    __table_args__ = (UniqueConstraint("collection_id", "patient_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    collection_id: Mapped[int] = mapped_column(
        ForeignKey("collections.id", ondelete="CASCADE"))
    #: stored exactly as upstream spells it; the archive layout maps it to a path
    patient_id: Mapped[str] = mapped_column(String(256))


class Study(Base):
    __tablename__ = "studies"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    patient_ref: Mapped[int] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    study_uid: Mapped[str] = mapped_column(String(64), unique=True)


class Series(Base):
    """One series: upstream metadata, local state, and its place in the work queue."""

    __tablename__ = "series"
    __table_args__ = (
        # the claim query: due QUEUED rows in next_attempt_at order
        Index("ix_series_claim", "state", "next_attempt_at"),
        # series of some collections in some states (snapshots, pending, failed); with the
        # local totals, status sums a collection from this index alone (index-only scan)
        Index("ix_series_status", "collection_id", "state", "local_bytes",
              "local_instance_count"),
        # the status page's commits of the last hours
        Index("ix_series_verified_at", "verified_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    series_uid: Mapped[str] = mapped_column(String(64), unique=True)
    collection_id: Mapped[int] = mapped_column(
        ForeignKey("collections.id", ondelete="CASCADE"))
    study_ref: Mapped[int] = mapped_column(
        ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    # --- upstream metadata (refreshed by every listing) ---
    modality: Mapped[str | None] = mapped_column(String(64))
    image_count: Mapped[int | None] = mapped_column(Integer)
    file_size: Mapped[int | None] = mapped_column(BigInteger)
    remote_timestamp: Mapped[datetime | None] = mapped_column(UtcDateTime)
    date_released: Mapped[datetime | None] = mapped_column(UtcDateTime)
    series_number: Mapped[int | None] = mapped_column(Integer)
    description: Mapped[str | None] = mapped_column(Text)
    raw: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    discovered_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # --- queue ---
    state: Mapped[SeriesState] = mapped_column(StateType)
    #: attempts started since the series was last (re)queued by discovery
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    #: why the series was last (re)queued: "new", "changed", "verify", ...
    queue_reason: Mapped[str | None] = mapped_column(String(64))
    #: fetch hint: repair instance by instance rather than a whole ZIP
    repair: Mapped[bool] = mapped_column(Boolean, default=False)
    #: re-discovered while FETCHING: the running fetch may be stale, so its result
    #: must send the series back to the queue instead of marking it done
    needs_refetch: Mapped[bool] = mapped_column(Boolean, default=False)
    # --- local copy ---
    local_path: Mapped[str | None] = mapped_column(Text)
    local_bytes: Mapped[int | None] = mapped_column(BigInteger)
    local_instance_count: Mapped[int | None] = mapped_column(Integer)
    verified_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    #: SOP Class UID of the stored instances (read from one file's header, for metadata.csv)
    sop_class_uid: Mapped[str | None] = mapped_column(String(64))


class ManifestSeries(Base):
    """A series pinned by a ``.tcia`` manifest: that manifest's sync keeps it mirrored.

    No foreign key to ``series``: a manifest may name series the server does not (or no
    longer) know, and the pin must outlive a series row's absence.
    """

    __tablename__ = "manifest_series"
    __table_args__ = (UniqueConstraint("manifest", "series_uid"),
                      Index("ix_manifest_series_series_uid", "series_uid"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    #: the manifest's absolute path, as given on the command line or in [sync] manifests
    manifest: Mapped[str] = mapped_column(String(1024))
    series_uid: Mapped[str] = mapped_column(String(64))


class Instance(Base):
    """One stored DICOM file of a committed series."""

    __tablename__ = "instances"
    # the unique constraint doubles as the "instances of a series" index
    __table_args__ = (UniqueConstraint("series_ref", "sop_uid"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    series_ref: Mapped[int] = mapped_column(ForeignKey("series.id", ondelete="CASCADE"))
    sop_uid: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger)
    md5: Mapped[str] = mapped_column(String(32))
    #: the server's own per-image MD5 string when it is not exactly ``md5`` (a value
    #: stored without leading zeros, blank, ...); ``""`` stands for none (NULL upstream).
    #: NULL here means the server's string equals ``md5``, the usual case, at no cost.
    server_md5: Mapped[str | None] = mapped_column(String(64))


class SyncRun(Base):
    """One sync, daemon cycle or verify run, for the record."""

    __tablename__ = "sync_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    collections: Mapped[list[str]] = mapped_column(JSON)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    outcome: Mapped[str | None] = mapped_column(String(32))
    counts: Mapped[dict[str, int] | None] = mapped_column(JSON(none_as_null=True))


collections = Collection.__table__
patients = Patient.__table__
studies = Study.__table__
series = Series.__table__
instances = Instance.__table__
sync_runs = SyncRun.__table__
manifest_series = ManifestSeries.__table__
metadata = Base.metadata
