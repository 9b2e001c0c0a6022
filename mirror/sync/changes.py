"""Applying what discovery planned: every catalog and archive write a poll makes, in one place.

Discovery (:mod:`mirror.sync.discovery`, :mod:`mirror.sync.manifest_discovery`) reads the
server and the catalog and computes the changes; :class:`Apply` writes them and
:class:`DryRun` drops them. A dry run is decided once, by which of the two the caller
passes; no discovery function asks whether it is one.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Protocol

import anyio

from mirror.archive import layout
from mirror.catalog.store import Scope
from mirror.config.settings import Settings
from mirror.domain import RemoteSeries, SeriesState
from mirror.sync import filters


class _Row(Protocol):
    @property
    def series_uid(self) -> str: ...
    @property
    def local_path(self) -> str | None: ...


class WritableCatalog(Protocol):
    """The catalog writes of a poll (the real one: :class:`mirror.catalog.Catalog`)."""

    async def record_unusable(self, records: Sequence[RemoteSeries]) -> int: ...
    async def upsert_series(self, records: Sequence[RemoteSeries]) -> int: ...
    async def requeue(self, series_uids: Sequence[str], *, reason: str,
                      repair: bool = False) -> int: ...
    async def retire(self, series_uids: Sequence[str]) -> int: ...
    async def forget_unfetched(self, series_uids: Sequence[str]) -> int: ...
    async def record_poll(self, name: str, *, at: datetime, ok: bool,
                          watermark: date | None = None, reconciled: bool = False,
                          error: str | None = None) -> None: ...
    async def set_pins(self, manifest: str, series_uids: Sequence[str]) -> None: ...
    async def set_collection_source(self, collection: str, source: str | None) -> None: ...
    def iter_series(self, *, states: Sequence[SeriesState],
                    collections: Sequence[str] | Scope | None = None,
                    batch: int = 1000) -> AsyncIterator[_Row]: ...


@dataclass
class BatchChanges:
    """What one batch of a listing changes: computed by discovery, written by :class:`Apply`."""

    unusable: list[RemoteSeries] = field(default_factory=list)  # failed for good
    upsert: list[RemoteSeries] = field(default_factory=list)
    requeue: list[str] = field(default_factory=list)  # new (again) or changed upstream
    repair: list[str] = field(default_factory=list)  # revised upstream


class Apply:
    """Writes discovery's changes to the catalog (and, for retirements, the archive)."""

    writes = True

    def __init__(self, catalog: WritableCatalog, settings: Settings) -> None:
        self.catalog = catalog
        self.settings = settings

    async def batch(self, changes: BatchChanges) -> None:
        if changes.unusable:
            await self.catalog.record_unusable(changes.unusable)
        await self.catalog.upsert_series(changes.upsert)
        if changes.requeue:
            await self.catalog.requeue(changes.requeue, reason="new or changed upstream")
        if changes.repair:
            await self.catalog.requeue(changes.repair, reason="revised upstream", repair=True)

    async def forget(self, series_uids: list[str]) -> None:
        """Drop waiting rows a filter now leaves out (nothing of them is on disk)."""
        if series_uids:
            await self.catalog.forget_unfetched(series_uids)

    async def retire(self, series_uids: list[str]) -> None:
        """Mark series gone upstream; with ``on_remote_delete = "delete"`` remove their files."""
        if not series_uids:
            return
        await self.catalog.retire(series_uids)
        if self.settings.sync.on_remote_delete == "delete":
            await self._delete_retired(series_uids)

    async def poll(self, collection: str, *, at: datetime, ok: bool,
                   watermark: date | None = None, reconciled: bool = False,
                   error: str | None = None) -> None:
        await self.catalog.record_poll(collection, at=at, ok=ok, watermark=watermark,
                                       reconciled=reconciled, error=error)

    async def remember_scope(self, collection: str, scope: filters.Scope) -> None:
        await anyio.to_thread.run_sync(filters.remember, Path(self.settings.archive.root),
                                       collection, scope)

    async def pins(self, manifest: str, series_uids: list[str]) -> None:
        await self.catalog.set_pins(manifest, series_uids)

    async def source(self, collection: str, source: str | None) -> None:
        await self.catalog.set_collection_source(collection, source)

    async def _delete_retired(self, series_uids: list[str]) -> None:
        root = Path(self.settings.archive.root)
        wanted = set(series_uids)
        async for row in self.catalog.iter_series(states=[SeriesState.RETIRED]):
            if row.series_uid in wanted and row.local_path:
                target = root / row.local_path
                if layout.is_inside(root, target) and target != root:
                    await anyio.to_thread.run_sync(shutil.rmtree, target, True)


class DryRun:
    """``sync --dry-run``: the same plan, nothing written anywhere."""

    writes = False

    async def batch(self, changes: BatchChanges) -> None:
        pass

    async def forget(self, series_uids: list[str]) -> None:
        pass

    async def retire(self, series_uids: list[str]) -> None:
        pass

    async def poll(self, collection: str, *, at: datetime, ok: bool,
                   watermark: date | None = None, reconciled: bool = False,
                   error: str | None = None) -> None:
        pass

    async def remember_scope(self, collection: str, scope: filters.Scope) -> None:
        pass

    async def pins(self, manifest: str, series_uids: list[str]) -> None:
        pass

    async def source(self, collection: str, source: str | None) -> None:
        pass


#: Either step: the one that writes, or the dry run's.
Applier = Apply | DryRun
