"""The pure planner: listing x snapshot -> actions, as table tests."""

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from mirror.domain import RemoteSeries, SeriesState
from mirror.sync.planner import plan_batch, plan_retirements

T0 = datetime(2024, 1, 1, tzinfo=UTC)
T1 = datetime(2024, 2, 1, tzinfo=UTC)


@dataclass
class Snap:
    state: SeriesState
    image_count: int | None = 10
    file_size: int | None = 1000
    remote_timestamp: datetime | None = T0
    local_instance_count: int | None = 10


def remote(uid: str = "1.2", count: int | None = 10, size: int | None = 1000,
           ts: datetime | None = T0) -> RemoteSeries:
    return RemoteSeries(series_uid=uid, study_uid="1.1", patient_id="P", collection="C",
                        image_count=count, file_size=size, timestamp=ts)


@pytest.mark.parametrize(("snap", "listed", "action"), [
    (None, remote(), "add"),
    (Snap(SeriesState.RETIRED), remote(), "add"),
    (Snap(SeriesState.DONE), remote(), "unchanged"),
    (Snap(SeriesState.DONE), remote(count=11), "repair"),
    (Snap(SeriesState.DONE), remote(size=999), "repair"),
    (Snap(SeriesState.DONE), remote(ts=T1), "repair"),
    (Snap(SeriesState.DONE, local_instance_count=0), remote(ts=T1), "refetch"),
    (Snap(SeriesState.DONE, local_instance_count=9), remote(), "repair"),
    (Snap(SeriesState.FAILED, local_instance_count=None), remote(count=12), "refetch"),
    (Snap(SeriesState.FAILED), remote(), "unchanged"),
    (Snap(SeriesState.QUEUED), remote(count=12), "unchanged"),
    (Snap(SeriesState.FETCHING), remote(count=12), "unchanged"),
    # v3 lists no FileSize or timestamp: missing fields are not evidence of change
    (Snap(SeriesState.DONE), remote(size=None, ts=None), "unchanged"),
    (Snap(SeriesState.DONE, file_size=None, remote_timestamp=None), remote(), "unchanged"),
])
def test_plan_batch(snap: Snap | None, listed: RemoteSeries, action: str) -> None:
    plan = plan_batch([listed], {} if snap is None else {listed.series_uid: snap})
    got = {k: v for k, v in plan.summary().items() if k in
           ("add", "refetch", "repair", "unchanged") and v}
    assert got == {action: 1}
    assert plan.bytes_to_fetch == (0 if action == "unchanged" else (listed.file_size or 0))


def test_retirements_only_for_unseen_series() -> None:
    plan = plan_retirements({"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"},
                            {"a", "b", "c", "d", "e", "f", "g", "h", "i"},
                            max_delete_fraction=0.1)
    assert plan.retire == ["j"]


def test_retirements_above_fraction_are_held_back() -> None:
    plan = plan_retirements({"a", "b", "c", "d"}, {"a", "b"}, max_delete_fraction=0.1)
    assert plan.retire == [] and plan.retire_held_back == 2


def test_merge_adds_up() -> None:
    a = plan_batch([remote("1.1")], {})
    b = plan_batch([remote("1.2", size=5)], {"1.2": Snap(SeriesState.DONE, file_size=4)})
    m = a.merge(b)
    assert (m.add, m.repair, m.bytes_to_fetch) == (["1.1"], ["1.2"], 1005)


# --- timestamps at the granularity the dialect gives (v4 is day-only) ---
V1_TIME = datetime(2015, 5, 27, 17, 12, 21, tzinfo=UTC)  # v1 "2015-05-27 17:12:21.0"
V4_DAY = datetime(2015, 5, 27, tzinfo=UTC)  # v4 "05-27-2015"


@pytest.mark.parametrize(("stored", "listed", "day_only", "action"), [
    # a catalog filled through v1, listed through v4: the same day is the same timestamp
    (V1_TIME, V4_DAY, True, "unchanged"),
    (V1_TIME, datetime(2015, 5, 28, tzinfo=UTC), True, "repair"),
    # a catalog filled through v4, listed through v1: the stored value has no time of day
    (V4_DAY, V1_TIME, False, "unchanged"),
    (V4_DAY, datetime(2015, 5, 29, 8, 0, tzinfo=UTC), False, "repair"),
    # both with a time of day (v1 to v1): exact
    (V1_TIME, V1_TIME.replace(second=22), False, "repair"),
    (V1_TIME, V1_TIME, False, "unchanged"),
    # a day-only dialect cannot see a same-day revision: that is the hash check's job
    (V1_TIME, V1_TIME.replace(hour=18), True, "unchanged"),
])
def test_timestamps_compare_at_dialect_granularity(stored: datetime, listed: datetime,
                                                   day_only: bool, action: str) -> None:
    plan = plan_batch([remote(ts=listed)],
                      {"1.2": Snap(SeriesState.DONE, remote_timestamp=stored)},
                      day_only=day_only)
    assert {k: v for k, v in plan.summary().items() if v and k != "bytes"} == {action: 1}


def test_day_only_dialects() -> None:
    from mirror.sync.planner import day_only

    assert day_only("nbia-v4")
    assert not day_only("nbia-v1")
    assert not day_only("v3")
