"""Plan and apply are split: a full listing with :class:`DryRun` plans exactly what the
writing run plans, and touches nothing (no catalog write is even attempted).

Fast: the property tests' in-memory catalog and client (``tests/test_planner_props.py``).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import anyio
import pytest

from mirror.domain import RemoteSeries
from mirror.sync import filters
from mirror.sync.changes import Apply, DryRun
from mirror.sync.discovery import full_listing
from tests.test_planner_props import COLLECTION, T0, ModelCatalog, ModelClient, Up

SETTINGS = SimpleNamespace(sync=SimpleNamespace(max_delete_fraction=0.5,
                                                on_remote_delete="keep"))


class ReadOnlyCatalog(ModelCatalog):
    """The model catalog, failing the test on any write."""

    async def upsert_series(self, records: Sequence[RemoteSeries]) -> int:
        raise AssertionError("a dry run wrote series")

    async def requeue(self, series_uids: Sequence[str], *, reason: str,
                      repair: bool = False) -> int:
        raise AssertionError("a dry run re-queued series")

    async def retire(self, series_uids: Sequence[str]) -> int:
        raise AssertionError("a dry run retired series")

    async def forget_unfetched(self, series_uids: Sequence[str]) -> int:
        raise AssertionError("a dry run forgot series")


def upstream(n: int) -> dict[str, Up]:
    return {f"1.2.{i}": Up(count=3, size=1000 + i, ts=T0, modality="CT", body_part=None,
                           patient=f"P{i % 3}") for i in range(n)}


async def plans(scope: filters.Scope) -> tuple[Any, Any, ModelCatalog, ModelCatalog]:
    """(dry plan, applied plan, catalog after the dry run, its state before) after one
    release: 2 new series, 1 revised, 1 withdrawn, on top of 6 already mirrored."""
    up = upstream(6)
    base = ModelCatalog()
    await full_listing(ModelClient(up, sizes=True), base, COLLECTION, SETTINGS,
                       lambda _: None)
    base.fetch_all(up)
    up.update({f"1.3.{i}": replace(up["1.2.0"], size=7) for i in range(2)})
    up["1.2.1"] = replace(up["1.2.1"], count=4, ts=T0 + timedelta(days=1))
    del up["1.2.2"]
    client = ModelClient(up, sizes=True)
    dry_catalog = ReadOnlyCatalog()
    dry_catalog.rows = copy.deepcopy(base.rows)
    before = copy.deepcopy(dry_catalog)
    dry = await full_listing(client, dry_catalog, COLLECTION, SETTINGS, lambda _: None,
                             scope, apply=DryRun())
    wet_catalog = copy.deepcopy(base)
    wet = await full_listing(client, wet_catalog, COLLECTION, SETTINGS, lambda _: None,
                             scope, apply=Apply(wet_catalog, SETTINGS))
    return dry, wet, dry_catalog, before


@pytest.mark.parametrize("scope", [filters.EVERYTHING,
                                   filters.Scope(modalities=frozenset({"MR"}))],
                         ids=["everything", "filtered"])
def test_dry_run_plans_like_the_real_run_and_writes_nothing(scope: filters.Scope) -> None:
    dry, wet, after, before = anyio.run(plans, scope)
    assert dry == wet
    assert after.rows == before.rows
    if scope.everything:
        assert sorted(dry.add) == ["1.3.0", "1.3.1"] and dry.retire == ["1.2.2"]
        assert dry.refetch + dry.repair == ["1.2.1"]  # revised: fetched again either way
    else:
        assert dry.out_of_scope == 7 and dry.out_of_scope_kept == 5
