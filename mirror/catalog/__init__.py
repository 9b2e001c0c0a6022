"""The catalog: SQLAlchemy tables, migrations and every SQL statement, including the queue.

:class:`Catalog` (the async engine and every operation) is imported on first use, so
that ``tcia-mirror status``, which reads through :mod:`mirror.catalog.status` alone,
never loads the async stack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mirror.catalog.records import (
    ClaimedSeries,
    CollectionInfo,
    LeaseLost,
    NotInitialised,
    SeriesRow,
    SeriesSnapshot,
)

if TYPE_CHECKING:
    from mirror.catalog.catalog import Catalog

__all__ = [
    "Catalog",
    "ClaimedSeries",
    "CollectionInfo",
    "LeaseLost",
    "NotInitialised",
    "SeriesRow",
    "SeriesSnapshot",
]


def __getattr__(name: str) -> object:
    if name == "Catalog":
        from mirror.catalog.catalog import Catalog

        return Catalog
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
