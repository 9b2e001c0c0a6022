"""Pure scheduling decisions: when to poll, when to list fully, when to retry a series."""

import random
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

import pytest

from mirror.errors import PermanentApiError, TransientApiError
from mirror.retry import RetryPolicy
from mirror.run.daemon import next_poll_at
from mirror.sync.discovery import needs_full_listing

CAP = 300.0

NOW = datetime(2026, 1, 10, 12, tzinfo=UTC)
WEEK = 7 * 86400.0


def info(watermark: date | None = date(2026, 1, 9),
         reconciled: datetime | None = NOW - timedelta(days=1)) -> SimpleNamespace:
    return SimpleNamespace(watermark=watermark, last_reconcile=reconciled)


@pytest.mark.parametrize(("collection", "force", "full"), [
    (None, False, True),  # never seen: first sync lists everything
    (info(watermark=None), False, True),
    (info(reconciled=None), False, True),
    (info(), True, True),  # sync --reconcile
    (info(), False, False),
    (info(reconciled=NOW - timedelta(days=7)), False, True),
    (info(reconciled=NOW - timedelta(days=6, hours=23)), False, False),
])
def test_needs_full_listing(collection: SimpleNamespace | None, force: bool, full: bool) -> None:
    assert needs_full_listing(collection, now=NOW, reconcile_interval=WEEK, force=force) is full


def test_never_polled_collection_is_due_now() -> None:
    assert next_poll_at(None, interval=3600, now=NOW, rng=random.Random(1)) == NOW


def test_poll_interval_is_jittered_within_ten_percent() -> None:
    rng = random.Random(7)
    dues = [next_poll_at(NOW, interval=3600, now=NOW, rng=rng) for _ in range(200)]
    offsets = [(d - NOW).total_seconds() for d in dues]
    assert min(offsets) >= 3240 and max(offsets) <= 3960
    assert len(set(offsets)) > 150  # not in lockstep


def test_series_retry_time_grows_and_is_capped() -> None:
    err = TransientApiError("503", endpoint="getImage", status=503)
    rng = random.Random(3)
    for attempt in range(1, 30):
        delay = (RetryPolicy(series_base=2, series_cap=CAP).retry_time(
            attempt, now=NOW, error=err, rng=rng) - NOW).total_seconds()
        assert 0 <= delay <= CAP


def test_series_retry_time_honours_retry_after() -> None:
    err = TransientApiError("429", endpoint="getImage", status=429, retry_after=120)
    policy = RetryPolicy(series_base=2, series_cap=CAP)
    assert policy.retry_time(1, now=NOW, error=err) - NOW >= timedelta(seconds=120)
    assert not PermanentApiError("400").transient
