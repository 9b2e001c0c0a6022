"""Discovery for a manifest scope: look the listed series up in batches, plan, pin, retire.

A manifest's series live in their real collections in the catalog, like any other; a pin
(manifest path, series UID) puts them in the scope of that manifest's syncs. Every sync of
a manifest asks the server about all of its series (NBIA v4: one ``getSeriesMetadata``
POST per :data:`LOOKUP_BATCH` UIDs), so revisions are planned like a collection's
reconcile, and a listed series the server no longer returns is retired (a withdrawal,
within ``max_delete_fraction``). Series not in the manifest are never retired by it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from mirror.catalog import Catalog
from mirror.config.settings import Settings
from mirror.domain import RemoteSeries, SeriesState
from mirror.sync import discovery
from mirror.sync.changes import Applier, Apply
from mirror.sync.discovery import DiscoveryCatalog, ListingClient
from mirror.sync.manifest import Manifest, read_manifest, valid_uid
from mirror.sync.planner import Plan, plan_retirements

if TYPE_CHECKING:
    from mirror.catalog.pins import PinnedSeries

#: UIDs per getSeriesMetadata POST: ~65 bytes each, so ~330 KB, far below Tomcat's 2 MB
#: form limit (tcia-utils sends 10,000).
LOOKUP_BATCH = 5000


class LookupClient(ListingClient, Protocol):
    """The server as a manifest's lookup asks it (NBIA v4 answers many UIDs at once)."""

    async def get_series_metadata_batch(self, series_uids: Sequence[str],
                                        ) -> list[RemoteSeries]: ...


class ManifestCatalog(DiscoveryCatalog, Protocol):
    """The catalog as a manifest's discovery uses it: discovery's, plus pinned series."""

    async def known_series(self, series_uids: Sequence[str]) -> dict[str, PinnedSeries]: ...


@dataclass
class ManifestDiscovery:
    manifest: str
    plan: Plan
    #: collection -> plan of the series this manifest lists in it
    plans: dict[str, Plan] = field(default_factory=dict)
    #: listed, not known upstream, never mirrored: nothing to fetch or retire
    missing: list[str] = field(default_factory=list)

    @property
    def collections(self) -> list[str]:
        return sorted(self.plans)


def manifest_key(path: str | Path) -> str:
    """The identity of a manifest in the catalog: its absolute path."""
    return str(Path(path).expanduser().absolute())


def load_all(paths: Sequence[str]) -> dict[str, Manifest]:
    """key -> parsed manifest, for every path (ManifestError, exit 2, on the first bad one)."""
    return {manifest_key(p): read_manifest(p) for p in paths}


async def discover_manifest(client: LookupClient, catalog: ManifestCatalog, key: str,
                            manifest: Manifest, *, settings: Settings,
                            apply: Applier | None = None) -> ManifestDiscovery:
    """Look up every series *manifest* lists, record them, pin them, retire withdrawn ones
    (*apply* writes; default: to *catalog*, a dry run passes
    :class:`~mirror.sync.changes.DryRun`)."""
    apply = apply or Apply(catalog, settings)
    uids = list(manifest.series_uids)
    known = await catalog.known_series(uids)
    await apply.pins(key, uids)
    seen: set[str] = set()
    plans: dict[str, Plan] = defaultdict(Plan)
    async for chunk in _lookup(client, uids, {u: k.study_uid for u, k in known.items()}):
        groups: dict[str, list[RemoteSeries]] = defaultdict(list)
        for record in chunk:
            if record.series_uid not in seen:
                seen.add(record.series_uid)
                groups[record.collection].append(record)
        for collection, records in groups.items():
            plans[collection] = plans[collection].merge(
                await discovery.record_batch(catalog, apply, collection, records))
    active = {uid for uid, k in known.items() if k.state is not SeriesState.RETIRED}
    retire = plan_retirements(active, seen, max_delete_fraction=settings.sync.max_delete_fraction)
    await apply.retire(retire.retire)
    for uid in retire.retire:
        plans[known[uid].collection].retire.append(uid)
    missing = [uid for uid in uids if uid not in seen and uid not in known]
    total = Plan(retire_held_back=retire.retire_held_back)
    for plan in plans.values():
        total = total.merge(plan)
    return ManifestDiscovery(key, total, dict(plans), missing)


async def _lookup(client: LookupClient, uids: Sequence[str],
                  study_of: Mapping[str, str]) -> AsyncIterator[list[RemoteSeries]]:
    """The server's current record of each listed series, in chunks; unknown ones are absent.

    NBIA v4 answers many UIDs per ``getSeriesMetadata`` POST. v1 and v3 have no batch
    lookup: series the catalog already knows are re-listed per study (``getSeries`` by
    StudyInstanceUID, one request for all listed series of a study), new ones one
    ``getSeries(SeriesInstanceUID=)`` each.
    """
    wanted = set(uids)

    def listed(records: list[RemoteSeries]) -> list[RemoteSeries]:
        # everything the server says is checked: only the asked-for series, with valid
        # UIDs and a collection to file them under
        return [r for r in records if r.series_uid in wanted and r.collection
                and valid_uid(r.study_uid)]

    if client.api == "nbia-v4":
        for start in range(0, len(uids), LOOKUP_BATCH):
            yield listed(await client.get_series_metadata_batch(uids[start:start + LOOKUP_BATCH]))
        return
    for study in dict.fromkeys(study_of[u] for u in uids if u in study_of):
        yield listed(await client.get_series(study_uid=study))
    for uid in uids:
        if uid not in study_of:
            yield listed(await client.get_series(series_uid=uid))


async def exported_uids(catalog_url: str, collections: Sequence[str] | None) -> list[str]:
    """Every DONE series (optionally of some collections only), for ``manifest export``."""
    catalog = await Catalog.open(catalog_url, upgrade=True)
    try:
        return [uid async for _, uid in catalog.done_series_uids(collections)]
    finally:
        await catalog.close()
