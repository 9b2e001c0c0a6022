"""The catalog's tables (SQLAlchemy Core): what upstream has, what is on disk, what is due.

Alembic migrations are the only way this schema reaches a database; a test checks that
autogenerate finds nothing between these tables and ``migrations/versions``. Plain
``Table`` objects rather than ORM classes: every statement is Core, and importing the
ORM would cost every command (``status`` above all) a third of its start-up.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)

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


metadata = MetaData(naming_convention=NAMING)


def _null(name: str, type_: Any, *args: Any, **kw: Any) -> Column[Any]:
    """A column that may be NULL."""
    return Column(name, type_, *args, nullable=True, **kw)


def _req(name: str, type_: Any, *args: Any, **kw: Any) -> Column[Any]:
    """A NOT NULL column."""
    return Column(name, type_, *args, nullable=False, **kw)


#: A TCIA collection we mirror, with its polling bookkeeping.
collections = Table(
    "collections", metadata,
    Column("id", Integer, primary_key=True),
    _req("name", String(256), unique=True),
    #: newest day whose discoveries are all recorded (polls ask from here - overlap)
    _null("watermark", Date),
    _null("last_poll_at", UtcDateTime),
    _null("last_poll_ok", Boolean),
    _null("last_reconcile_at", UtcDateTime),
    _null("last_error", Text),
    _req("created_at", UtcDateTime),
    # the ``[sources.NAME]`` the collection is mirrored from; NULL: the default [source]
    _null("source", String(64)),
    # --- MD5 hierarchy check (getMD5Hierarchy; nbia-v4) ---
    # when the last complete pass over every patient finished
    _null("hash_checked_at", UtcDateTime),
    # series the last complete pass found changed (and re-queued)
    _null("hash_changed", Integer),
    # rolling scrub: when the pass under way started, the last patient it checked,
    # and the changed series it found so far
    _null("hash_pass_started_at", UtcDateTime),
    _null("hash_cursor", String(256)),
    _null("hash_pass_changed", Integer),
)

patients = Table(
    "patients", metadata,
    Column("id", BigId, primary_key=True),
    _req("collection_id", Integer, ForeignKey("collections.id", ondelete="CASCADE")),
    # stored exactly as upstream spells it; the archive layout maps it to a path
    _req("patient_id", String(256)),
    UniqueConstraint("collection_id", "patient_id"),
)

studies = Table(
    "studies", metadata,
    Column("id", BigId, primary_key=True),
    _req("patient_ref", BigId, ForeignKey("patients.id", ondelete="CASCADE"), index=True),
    _req("study_uid", String(64), unique=True),
)

#: One series: upstream metadata, local state, and its place in the work queue.
series = Table(
    "series", metadata,
    Column("id", BigId, primary_key=True),
    _req("series_uid", String(64), unique=True),
    _req("collection_id", Integer, ForeignKey("collections.id", ondelete="CASCADE")),
    _req("study_ref", BigId, ForeignKey("studies.id", ondelete="CASCADE"), index=True),
    # --- upstream metadata (refreshed by every listing) ---
    _null("modality", String(64)),
    _null("image_count", Integer),
    _null("file_size", BigInteger),
    _null("remote_timestamp", UtcDateTime),
    _null("date_released", UtcDateTime),
    _null("series_number", Integer),
    _null("description", Text),
    _null("raw", JSON(none_as_null=True)),
    _req("discovered_at", UtcDateTime),
    # --- queue ---
    _req("state", StateType),
    # attempts started since the series was last (re)queued by discovery
    _req("attempts", Integer, default=0),
    _null("next_attempt_at", UtcDateTime),
    _null("lease_owner", String(200)),
    _null("lease_expires_at", UtcDateTime),
    _null("last_error", Text),
    # why the series was last (re)queued: "new", "changed", "verify", ...
    _null("queue_reason", String(64)),
    # fetch hint: repair instance by instance rather than a whole ZIP
    _req("repair", Boolean, default=False),
    # re-discovered while FETCHING: the running fetch may be stale, so its result
    # must send the series back to the queue instead of marking it done
    _req("needs_refetch", Boolean, default=False),
    # --- local copy ---
    _null("local_path", Text),
    _null("local_bytes", BigInteger),
    _null("local_instance_count", Integer),
    _null("verified_at", UtcDateTime),
    # SOP Class UID of the stored instances (read from one file's header, for metadata.csv)
    _null("sop_class_uid", String(64)),
    # the claim query: due QUEUED rows in next_attempt_at order
    Index("ix_series_claim", "state", "next_attempt_at"),
    # series of some collections in some states (snapshots, pending, failed); with the
    # local totals, status sums a collection from this index alone (index-only scan)
    Index("ix_series_status", "collection_id", "state", "local_bytes",
          "local_instance_count"),
    # the status page's commits of the last hours
    Index("ix_series_verified_at", "verified_at"),
)

#: A series pinned by a ``.tcia`` manifest: that manifest's sync keeps it mirrored. No
#: foreign key to ``series``: a manifest may name series the server does not (or no
#: longer) know, and the pin must outlive a series row's absence.
manifest_series = Table(
    "manifest_series", metadata,
    Column("id", BigId, primary_key=True),
    # the manifest's absolute path, as given on the command line or in [sync] manifests
    _req("manifest", String(1024)),
    _req("series_uid", String(64)),
    UniqueConstraint("manifest", "series_uid"),
    Index("ix_manifest_series_series_uid", "series_uid"),
)

#: One stored DICOM file of a committed series; the unique constraint doubles as the
#: "instances of a series" index.
instances = Table(
    "instances", metadata,
    Column("id", BigId, primary_key=True),
    _req("series_ref", BigId, ForeignKey("series.id", ondelete="CASCADE")),
    _req("sop_uid", String(64)),
    _req("path", Text),
    _req("size", BigInteger),
    _req("md5", String(32)),
    # the server's own per-image MD5 string when it is not exactly ``md5`` (a value
    # stored without leading zeros, blank, ...); ``""`` stands for none (NULL upstream).
    # NULL here means the server's string equals ``md5``, the usual case, at no cost.
    _null("server_md5", String(64)),
    UniqueConstraint("series_ref", "sop_uid"),
)

#: One sync, daemon cycle or verify run, for the record.
sync_runs = Table(
    "sync_runs", metadata,
    Column("id", Integer, primary_key=True),
    _req("kind", String(32)),
    _req("collections", JSON),
    _req("started_at", UtcDateTime),
    _null("finished_at", UtcDateTime),
    _null("outcome", String(32)),
    _null("counts", JSON(none_as_null=True)),
)
