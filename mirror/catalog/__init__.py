"""The catalog: SQLAlchemy models, migrations and every SQL statement, including the queue."""

from mirror.catalog.catalog import Catalog
from mirror.catalog.records import (
    ClaimedSeries,
    CollectionInfo,
    LeaseLost,
    NotInitialised,
    SeriesRow,
    SeriesSnapshot,
)

__all__ = [
    "Catalog",
    "ClaimedSeries",
    "CollectionInfo",
    "LeaseLost",
    "NotInitialised",
    "SeriesRow",
    "SeriesSnapshot",
]
