"""What every way of running wires: the catalog and clients, the archive claim, collection names.

Sync, daemon, worker and verify all start here; none of them imports another.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Protocol

import anyio

from mirror import transfer
from mirror.archive import layout
from mirror.catalog import Catalog
from mirror.config.settings import Settings
from mirror.config.sources import collection_sources, source_settings, split_collection
from mirror.errors import ConfigError
from mirror.tcia import TciaClient

#: Called with (endpoint, status) after every response (the daemon's request counter).
OnResponse = Callable[[str, int | str], None]


@asynccontextmanager
async def open_components(settings: Settings, *, upgrade: bool = True,
                          on_response: OnResponse | None = None,
                          ) -> AsyncIterator[tuple[TciaClient, Catalog]]:
    """The catalog (migrated) and one API client, closed on exit."""
    catalog = await Catalog.open(settings.catalog.url, upgrade=upgrade)
    try:
        async with TciaClient(settings.source, on_response=on_response) as client:
            yield client, catalog
    finally:
        await catalog.close()


def by_source(settings: Settings) -> dict[str | None, list[str]]:
    """Source name (None: [source]) -> the collections mirrored from it."""
    groups: dict[str | None, list[str]] = {}
    for collection, source in collection_sources(settings).items():
        groups.setdefault(source, []).append(collection)
    return groups


@asynccontextmanager
async def open_sources(settings: Settings, default: TciaClient, *,
                       on_response: OnResponse | None = None,
                       ) -> AsyncIterator[dict[str | None, TciaClient]]:
    """One client per source the collections use: *default* for ``[source]``, a new
    one for each ``[sources.NAME]`` (closed on exit)."""
    clients: dict[str | None, TciaClient] = {None: default}
    async with AsyncExitStack() as stack:
        for source in by_source(settings):
            if source is not None:
                clients[source] = await stack.enter_async_context(TciaClient(
                    source_settings(settings, source), on_response=on_response))
        yield clients


class _Reaper(Protocol):
    async def reap_expired(self) -> int: ...


async def prepare_archive(settings: Settings, catalog: _Reaper, *,
                          shared: bool = False) -> int:
    """Crash recovery at start: clear stale staging, put expired leases back in the queue.

    The archive root must be writable (else one ConfigError naming ``archive.root``).
    Staging is cleared only when no other live process uses this archive (see
    :func:`_claim_archive`); a daemon or worker, which may share the archive with other
    hosts, only clears staging older than two leases.
    """
    root = Path(settings.archive.root)
    older_than = 2 * settings.sync.lease if shared else None
    await anyio.to_thread.run_sync(_claim_archive, root, older_than)
    return await catalog.reap_expired()


#: One open ``.staging`` directory per archive root this process uses; its flock (shared
#: while running, exclusive only while clearing) tells other processes we are alive, and
#: the kernel drops it when we exit, however we exit.
_ARCHIVE_LOCKS: dict[str, int] = {}


def _claim_archive(root: Path, older_than: float | None) -> None:
    """Check that *root* is writable, then clear staging that no live process owns.

    Two one-shot syncs at once (an overlapping cron job) cooperate: each claims other
    series from the catalog queue, and only a process that finds no other live one
    holding the archive's lock clears ``.staging`` (everything left there then belongs
    to dead processes). Others leave it alone.
    """
    staging = layout.staging_root(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
        staging.mkdir(exist_ok=True)
        os.rmdir(tempfile.mkdtemp(prefix=".probe-", dir=staging))
    except OSError as exc:
        raise ConfigError(f"archive.root: {root} is not writable: "
                          f"{exc.strerror or exc}") from exc
    key = str(staging.resolve())
    fd = _ARCHIVE_LOCKS.get(key)
    if fd is None:
        fd = _ARCHIVE_LOCKS[key] = os.open(staging, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        alone = True
    except BlockingIOError:
        alone = False
    try:
        if alone or older_than is not None:
            transfer.clear_staging(root, older_than=older_than)
    finally:
        fcntl.flock(fd, fcntl.LOCK_SH)


async def resolve_names(settings: Settings, client: TciaClient,
                        catalog: Catalog | None = None) -> Settings:
    """``[sync] collections`` in each server's own spelling, asked source by source
    (``"nlst:nlst"`` becomes ``"nlst:NLST"``); an unknown name is a ConfigError.

    A name the catalog already holds, spelled exactly so, was checked when it was first
    added: when every name is such, no request is made (a sync that is already in sync
    stays at two requests per collection).
    """
    by_server: dict[str | None, list[str]] = {}
    for entry in settings.sync.collections:
        source, name = split_collection(entry)
        by_server.setdefault(source, []).append(name)
    if catalog is not None and all([await catalog.get_collection(name) is not None
                                    for names in by_server.values() for name in names]):
        return settings
    entries: list[str] = []
    for source, names in by_server.items():
        if source is None:
            real = await resolve_collections(client, names)
        else:
            async with TciaClient(source_settings(settings, source)) as other:
                real = await resolve_collections(other, names)
        entries.extend(real if source is None else (f"{source}:{n}" for n in real))
    return settings.replace("sync", collections=tuple(entries))


async def resolve_collections(client: TciaClient, names: Sequence[str]) -> list[str]:
    """Each configured name in the server's own spelling (matched case-insensitively).

    A name the server does not offer (``getCollectionValues``) is refused with a
    did-you-mean, before it can become an empty collection that is "in sync" forever;
    ``sim-lung`` becomes ``SIM-LUNG`` instead of a second collection.
    """
    if not names:
        return []
    offered = [name for name in await client.get_collection_values() if isinstance(name, str)]
    by_fold = {name.casefold(): name for name in offered}
    resolved: list[str] = []
    for name in names:
        real = by_fold.get(name.casefold())
        if real is None:
            import difflib  # only for this message

            close = difflib.get_close_matches(name.casefold(), list(by_fold), n=1, cutoff=0.6)
            hint = f"; did you mean {by_fold[close[0]]!r}?" if close else ""
            raise ConfigError(f"sync.collections: the server has no collection "
                              f"{name[:100]!r}{hint}")
        if real not in resolved:
            resolved.append(real)
    return resolved
