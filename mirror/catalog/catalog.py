"""The Catalog object: one async engine and every catalog operation, for one URL."""

from __future__ import annotations

from mirror.catalog import engine as catalog_engine
from mirror.catalog import migrate
from mirror.catalog.discovery import DiscoveryOps
from mirror.catalog.hashstate import HashOps
from mirror.catalog.pins import PinOps
from mirror.catalog.queue import QueueOps
from mirror.catalog.reports import FailureAndThroughputOps, ReportOps
from mirror.catalog.scope import ScopeOps


class Catalog(DiscoveryOps, QueueOps, ReportOps, ScopeOps, FailureAndThroughputOps, PinOps,
              HashOps):
    """The mirror's memory and work queue, on SQLite or Postgres.

    Open with :meth:`open`, close with :meth:`close`. All datetimes in and out are
    timezone-aware UTC.
    """

    @classmethod
    async def open(cls, url: str, *, upgrade: bool = True) -> Catalog:
        """Connect to the catalog at *url*; migrate it first unless ``upgrade=False``.

        Without upgrade the schema must already be current (NotInitialised otherwise),
        and a missing SQLite file is reported rather than created.
        """
        catalog_engine.parse_url(url)
        if upgrade:
            migrate.ensure_sqlite_dir(url)
        else:
            migrate.require_sqlite_file(url)
        engine = catalog_engine.create_engine(url)
        try:
            if upgrade:
                await migrate.migrate_engine(engine, url)
            else:
                await migrate.check_engine(engine, url)
        except BaseException:
            await engine.dispose()
            raise
        return cls(engine, url)

    async def close(self) -> None:
        """Close every pooled connection."""
        self._dispose_thread_engine()
        await self._engine.dispose()

    async def __aenter__(self) -> Catalog:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
