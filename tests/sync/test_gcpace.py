"""The collector's threshold while listings are recorded: raised, and restored after the last."""

import gc

import pytest

from mirror.sync.gcpace import LISTING_THRESHOLD, few_collections


def test_raised_inside_and_restored_after_overlapping_listings() -> None:
    before = gc.get_threshold()
    first = few_collections()
    first.__enter__()
    assert gc.get_threshold() == (LISTING_THRESHOLD, *before[1:])
    with few_collections():  # a second collection's poll starts and ends meanwhile
        assert gc.get_threshold()[0] == LISTING_THRESHOLD
    assert gc.get_threshold()[0] == LISTING_THRESHOLD  # the first is still running
    first.__exit__(None, None, None)
    assert gc.get_threshold() == before


def test_restored_when_the_listing_fails() -> None:
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), few_collections():
        raise RuntimeError("cut off")
    assert gc.get_threshold() == before
