"""The catalog: SQLAlchemy models, migrations and every SQL statement, including the queue."""

from mirror.catalog.records import (
    ClaimedSeries,
    CollectionInfo,
    LeaseLost,
    NotInitialised,
    SeriesRow,
    SeriesSnapshot,
)

__all__ = [
    "ClaimedSeries",
    "CollectionInfo",
    "LeaseLost",
    "NotInitialised",
    "SeriesRow",
    "SeriesSnapshot",
]
