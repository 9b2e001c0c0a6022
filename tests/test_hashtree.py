"""The local MD5 hierarchy from catalog rows, against tcia-api-v4.md's worked example."""

from dataclasses import dataclass

import pytest

from mirror.domain import SeriesState
from mirror.sync.hashtree import build_trees, collection_hash, image_string, scrub_quota

MD5_EMPTY = "d41d8cd98f00b204e9800998ecf8427e"  # md5("")
MD5_A = "0cc175b9c0f1b6a831c399e269772661"  # md5("a")
MD5_B = "92eb5ffee6ae2fec3ad71c777531578f"  # md5("b")


@dataclass
class Row:
    patient_id: str
    study_uid: str
    series_uid: str
    sop_uid: str | None
    md5: str | None
    server_md5: str | None = None
    state: SeriesState = SeriesState.DONE


EXAMPLE = [
    Row("P", "1.1", "1.1.1", "1.1.1.1", MD5_EMPTY),  # series A
    Row("P", "1.1", "1.1.1", "1.1.1.2", MD5_A),
    Row("P", "1.1", "1.1.2", "1.1.2.1", MD5_B),  # series B
]


def test_worked_example() -> None:
    tree = build_trees(EXAMPLE)["P"]
    assert tree.series_hash("1.1", "1.1.1") == "dcb735a2965ccc1fd0893307fd61b78a"
    assert tree.series_hash("1.1", "1.1.2") == "dc0ae7e1387be9b795f5d6299e383759"
    assert tree.study_hash("1.1") == "851b85e1081e49929d3487d4de1bd827"
    assert tree.patient_hash() == "d73b1e15c8b5096b88a1aab00883549f"


def test_series_without_instances_adds_nothing() -> None:
    tree = build_trees([*EXAMPLE, Row("P", "1.1", "1.1.3", None, None,
                                      state=SeriesState.QUEUED)])["P"]
    assert tree.series_hash("1.1", "1.1.3") == ""
    assert tree.study_hash("1.1") == "851b85e1081e49929d3487d4de1bd827"
    assert tree.states["1.1.3"] is SeriesState.QUEUED


def test_server_string_wins_and_empty_means_null() -> None:
    rows = [Row("P", "1.1", "1.1.1", "1.1.1.1", "f" * 32, server_md5=""),
            Row("P", "1.1", "1.1.1", "1.1.1.2", MD5_EMPTY),
            Row("P", "1.1", "1.1.1", "1.1.1.3", MD5_A)]
    # the reference: one NULL plus series A's images
    assert build_trees(rows)["P"].series_hash("1.1", "1.1.1") == (
        "c80fae5a876fbe9592d2730b7f9eea36")


@pytest.mark.parametrize(("md5", "server", "want"), [
    (MD5_A, None, MD5_A),
    ("0" + "1" * 31, "1" * 31, "1" * 31),  # stored upstream without its leading zero
    (MD5_A, "", None),
])
def test_image_string(md5: str, server: str | None, want: str | None) -> None:
    assert image_string(md5, server) == want


def test_collection_of_one_patient_is_its_hash_hashed() -> None:
    patient = build_trees(EXAMPLE)["P"].patient_hash()
    assert collection_hash([patient]) not in ("", patient)
    assert collection_hash([]) == ""


@pytest.mark.parametrize(("total", "done", "since", "interval", "want"), [
    (26_000, 0, 0, 7 * 86400, 0),  # a pass just started: nothing yet
    (26_000, 0, 3600, 7 * 86400, 155),  # an hour into a weekly pass
    (26_000, 155, 7200, 7 * 86400, 155),  # the next hour: the next share
    (26_000, 100, 8 * 86400, 7 * 86400, 25_900),  # late: everything left
    (5, 0, 60, 7 * 86400, 1),
    (0, 0, 3600, 86400, 0),
    (10, 3, -5, 86400, 0),
])
def test_scrub_quota(total: int, done: int, since: float, interval: float, want: int) -> None:
    assert scrub_quota(total, done=done, since_start=since, reconcile_interval=interval) == want
