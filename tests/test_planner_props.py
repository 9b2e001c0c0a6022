"""Property tests: the planner, applied as the scheduler applies it, over random release sequences.

A random sequence of upstream releases of one collection (new series, revised series,
withdrawn series, withdrawn series listed again, plain re-listings), each followed by a
full-listing pass of :func:`mirror.sync.discovery.full_listing` (which plans with
:func:`mirror.sync.planner.plan_batch` and :func:`mirror.sync.planner.plan_retirements`) against an
in-memory catalog that keeps the real catalog's transition rules, then by a fetch step in
which every queued series succeeds. Silent revisions (content changes that no listed field
shows) are out of scope for the planner and are not generated.

The retirement property is the exact rule, not "eventually equal": series gone upstream
are all retired in the pass that sees them, unless they are more than
``max_delete_fraction`` of the series the catalog holds; then none is retired, the
count is reported, and the hold persists until the fraction is met again (the collection
grows, or withdrawn series come back).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import anyio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mirror.domain import Event, RemoteSeries, SeriesState, transition
from mirror.errors import IllegalTransition
from mirror.sync import filters
from mirror.sync.discovery import full_listing
from mirror.sync.planner import Plan

COLLECTION = "PROP-COLL"
T0 = datetime(2020, 1, 1, tzinfo=UTC)
MODALITIES = ("CT", "MR", "PT")
BODY_PARTS = ("CHEST", "HEAD", None)
PATIENTS = ("P1", "P2", "P3")


@dataclass(frozen=True)
class Up:
    """One series as upstream holds it (the truth a fetch delivers)."""

    count: int
    size: int
    ts: datetime
    modality: str
    body_part: str | None
    patient: str
    version: int = 0  #: bumped by every revision: which content a fetch delivers


@dataclass
class Row:
    """What the model catalog records (the fields the planner's Snapshot reads)."""

    state: SeriesState
    image_count: int | None
    file_size: int | None
    remote_timestamp: datetime | None
    local_instance_count: int | None = None
    local_version: int | None = None  #: the upstream version the files on disk are


class ModelCatalog:
    """The catalog methods discovery calls, with the SQL catalog's guards and transitions."""

    def __init__(self) -> None:
        self.rows: dict[str, Row] = {}

    async def series_snapshot(self, collection: str,
                              series_uids: Collection[str] | None = None) -> dict[str, Row]:
        uids = self.rows if series_uids is None else [u for u in series_uids if u in self.rows]
        return {u: replace(self.rows[u]) for u in uids}

    async def active_series(self, collection: str) -> set[str]:
        return {u for u, row in self.rows.items() if row.state is not SeriesState.RETIRED}

    async def upsert_series(self, records: Sequence[RemoteSeries]) -> int:
        new = 0
        for r in records:  # new series are queued; known ones get fresh metadata only
            row = self.rows.get(r.series_uid)
            if row is None:
                new += 1
                self.rows[r.series_uid] = Row(SeriesState.QUEUED, r.image_count,
                                              r.file_size, r.timestamp)
            else:
                row.image_count, row.file_size = r.image_count, r.file_size
                row.remote_timestamp = r.timestamp
        return new

    def _move(self, uids: Sequence[str], event: Event) -> int:
        moved = 0
        for uid in dict.fromkeys(uids):
            row = self.rows.get(uid)
            if row is None or (event is Event.RETIRE and row.state is SeriesState.RETIRED):
                continue
            try:
                row.state = transition(row.state, event)
            except IllegalTransition:
                continue  # the SQL update's guard skips the row
            moved += 1
        return moved

    async def requeue(self, series_uids: Sequence[str], *, reason: str,
                      repair: bool = False) -> int:
        return self._move(series_uids, Event.DISCOVER)

    async def retire(self, series_uids: Sequence[str]) -> int:
        return self._move(series_uids, Event.RETIRE)

    async def forget_unfetched(self, series_uids: Sequence[str]) -> int:
        gone = [u for u in series_uids if u in self.rows
                and self.rows[u].state in (SeriesState.QUEUED, SeriesState.FAILED)
                and not self.rows[u].local_instance_count]
        for uid in gone:
            del self.rows[uid]
        return len(gone)

    def fetch_all(self, upstream: dict[str, Up]) -> None:
        """Every queued series is fetched successfully: it holds upstream's instances."""
        for uid, row in self.rows.items():
            if row.state is SeriesState.QUEUED:
                row.state = transition(transition(row.state, Event.CLAIM), Event.COMPLETE)
                row.local_instance_count = upstream[uid].count
                row.local_version = upstream[uid].version

    def live(self) -> set[str]:
        return {u for u, r in self.rows.items() if r.state is not SeriesState.RETIRED}


class ModelClient:
    """A full listing of the current upstream, as a dialect reports it."""

    def __init__(self, upstream: dict[str, Up], *, sizes: bool) -> None:
        self.upstream, self.sizes = upstream, sizes

    async def iter_series(self, *, collection: str,
                          on_reject: Any = None) -> AsyncIterator[RemoteSeries]:
        for uid in sorted(self.upstream):
            yield listed(uid, self.upstream[uid], sizes=self.sizes)


def listed(uid: str, up: Up, *, sizes: bool) -> RemoteSeries:
    """v3 lists neither FileSize nor a timestamp (sizes=False); the NBIA dialects do."""
    return RemoteSeries(series_uid=uid, study_uid=f"{uid}.0", patient_id=up.patient,
                        collection=COLLECTION, modality=up.modality, image_count=up.count,
                        file_size=up.size if sizes else None, body_part=up.body_part,
                        timestamp=up.ts if sizes else None)


# --- strategies --------------------------------------------------------------------------

attrs = st.builds(Up, count=st.integers(1, 40), size=st.integers(1, 10**9),
                  ts=st.integers(0, 3000).map(lambda d: T0 + timedelta(days=d)),
                  modality=st.sampled_from(MODALITIES),
                  body_part=st.sampled_from(BODY_PARTS), patient=st.sampled_from(PATIENTS))
revision = st.sampled_from(("count", "size", "timestamp", "all"))


def subset(values: Sequence[Any]) -> st.SearchStrategy[frozenset[str]]:
    return st.sets(st.sampled_from([v for v in values if v]), max_size=2).map(frozenset)


scopes = st.one_of(st.just(filters.EVERYTHING),
                   st.builds(filters.Scope, modalities=subset(MODALITIES),
                             body_parts=subset(BODY_PARTS), patients=subset(PATIENTS)))
release = st.fixed_dictionaries({
    "new": st.lists(attrs, max_size=4),
    "revise": st.lists(st.tuples(st.integers(0, 99), revision), max_size=3),
    "withdraw": st.lists(st.integers(0, 99), max_size=3),
    "restore": st.lists(st.integers(0, 99), max_size=2),  # a withdrawn series comes back
    "scope": scopes,
})


def revised(up: Up, what: str) -> Up:
    up = replace(up, version=up.version + 1)
    if what == "count":
        return replace(up, count=up.count + 1)
    if what == "size":
        return replace(up, size=up.size + 1)
    if what == "timestamp":
        return replace(up, ts=up.ts + timedelta(days=1))
    return replace(up, count=up.count + 2, size=up.size * 2, ts=up.ts + timedelta(days=3))


def publish(upstream: dict[str, Up], withdrawn: dict[str, Up], step: dict[str, Any],
            serial: int, *, sizes: bool = True) -> None:
    """Apply one release to upstream in place (indices wrap around the current series).

    Without sizes and timestamps in the listing (v3) only a count change is visible, so
    only such revisions are made (anything else would be a silent revision).
    """
    for n, up in enumerate(step["new"]):
        upstream[f"1.2.{serial}.{n}"] = up
    uids = sorted(upstream)
    for index, what in step["revise"]:
        if uids:
            uid = uids[index % len(uids)]
            upstream[uid] = revised(upstream[uid], what if sizes else "count")
    for index in step["withdraw"]:
        if upstream:
            uid = sorted(upstream)[index % len(upstream)]
            withdrawn[uid] = upstream.pop(uid)
    for index in step["restore"]:
        if withdrawn:
            uid = sorted(withdrawn)[index % len(withdrawn)]
            upstream[uid] = withdrawn.pop(uid)


async def one_pass(client: ModelClient, catalog: ModelCatalog, fraction: float,
                   scope: filters.Scope) -> Plan:
    config = SimpleNamespace(sync=SimpleNamespace(max_delete_fraction=fraction,
                                                  on_remote_delete="keep"))
    rejected: list[Any] = []
    plan = await full_listing(client, catalog, COLLECTION, config, rejected.append,
                              scope)
    assert rejected == []  # the model lists only valid rows
    return plan


def check_plan_shape(plan: Plan, listing: dict[str, RemoteSeries]) -> None:
    fetched = plan.add + plan.refetch + plan.repair
    assert len(set(fetched)) == len(fetched), "a series planned twice"
    assert not set(fetched) & set(plan.retire), "a series both fetched and retired"
    assert plan.bytes_to_fetch == sum(listing[u].file_size or 0 for u in fetched)


async def run_sequence(steps: list[dict[str, Any]], fraction: float, sizes: bool) -> None:
    upstream: dict[str, Up] = {}
    withdrawn: dict[str, Up] = {}
    catalog = ModelCatalog()
    client = ModelClient(upstream, sizes=sizes)
    for serial, step in enumerate(steps):
        publish(upstream, withdrawn, step, serial, sizes=sizes)
        scope = step["scope"]
        listing = {u: listed(u, up, sizes=sizes) for u, up in upstream.items()}
        live_before = catalog.live()

        plan = await one_pass(client, catalog, fraction, scope)
        catalog.fetch_all(upstream)

        check_plan_shape(plan, listing)
        in_scope = {u for u in upstream if scope.keeps(listing[u])}
        # filters: nothing outside the scope is fetched, and nothing listed is retired
        assert not set(plan.add + plan.refetch + plan.repair) - in_scope
        assert not set(plan.retire) & set(upstream)
        assert not (live_before & set(upstream)) - catalog.live()
        # every in-scope upstream series is held, complete, in the catalog
        for uid in in_scope:
            row = catalog.rows[uid]
            assert row.state is SeriesState.DONE, (uid, row)
            assert row.local_instance_count == upstream[uid].count, (uid, row)
            assert row.local_version == upstream[uid].version, (uid, row)
        # out-of-scope series are only kept when files of them are on disk
        for uid in set(upstream) - in_scope:
            assert uid not in catalog.rows or catalog.rows[uid].local_instance_count
        # retirements: all of what is gone, or (over the fraction) none and counted
        gone = catalog.live() - set(upstream)
        if plan.retire_held_back:
            assert plan.retire == [] and len(gone) == plan.retire_held_back
            assert plan.retire_held_back > fraction * max(len(catalog.live()), 1)
        else:
            assert gone == set() and set(plan.retire) == live_before - set(upstream)

        # idempotence: the same upstream planned again changes nothing
        again = await one_pass(client, catalog, fraction, scope)
        assert (again.add, again.refetch, again.repair, again.retire) == ([], [], [], [])
        assert again.bytes_to_fetch == 0 and again.retire_held_back == len(gone)


@settings(max_examples=200, derandomize=True, database=None, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(release, min_size=1, max_size=8),
       fraction=st.sampled_from((0.0, 0.1, 0.5, 1.0)), sizes=st.booleans())
def test_release_sequences_converge(steps: list[dict[str, Any]], fraction: float,
                                    sizes: bool) -> None:
    anyio.run(run_sequence, steps, fraction, sizes)


@settings(max_examples=60, derandomize=True, database=None, deadline=None)
@given(held=st.lists(attrs, min_size=1, max_size=20), data=st.data())
def test_held_back_retirements_land_once_under_the_fraction(held: list[Up],
                                                            data: st.DataObject) -> None:
    """A hold is not forever: once what is gone is within the fraction again, it is retired."""
    fraction = data.draw(st.sampled_from((0.1, 0.25, 0.5)))

    async def scenario() -> None:
        upstream = {f"1.3.{n}": up for n, up in enumerate(held)}
        catalog = ModelCatalog()
        client = ModelClient(upstream, sizes=True)
        await one_pass(client, catalog, fraction, filters.EVERYTHING)
        catalog.fetch_all(upstream)
        total = len(upstream)
        # withdraw more than the fraction allows: nothing is retired, all are counted
        k = data.draw(st.integers(int(fraction * total) + 1, total))
        gone = set(sorted(upstream)[:k])
        for uid in gone:
            del upstream[uid]
        plan = await one_pass(client, catalog, fraction, filters.EVERYTHING)
        assert (plan.retire, plan.retire_held_back) == ([], k)
        assert catalog.live() == set(upstream) | gone
        # new series until the gone ones are exactly within the fraction of the catalog
        grow = 0
        while k > fraction * (total + grow):
            upstream[f"9.9.{grow}"] = held[grow % len(held)]
            grow += 1
        plan = await one_pass(client, catalog, fraction, filters.EVERYTHING)
        assert plan.retire_held_back == 0 and set(plan.retire) == gone
        assert sorted(plan.add) == sorted(f"9.9.{n}" for n in range(grow))
        assert catalog.live() == set(upstream)

    anyio.run(scenario)
