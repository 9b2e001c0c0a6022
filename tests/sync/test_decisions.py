"""The pure decisions of the per-series job and the retry policy, as tables."""

from __future__ import annotations

import errno
import random
from datetime import UTC, datetime, timedelta

import pytest

from mirror.errors import (
    ApiError,
    HostileArchive,
    MirrorError,
    PermanentApiError,
    ProtocolError,
    SourceUnreachable,
    StorageError,
    StorageFull,
    TransientApiError,
    VerificationError,
)
from mirror.retry import RetryPolicy
from mirror.sync.job import REPAIR_MAX_MISSING, sop_plan, zip_after_sop_error

NOW = datetime(2026, 1, 10, 12, tzinfo=UTC)
W4 = ["a", "b", "c", "d"]


class MaxRandom(random.Random):
    def uniform(self, a: float, b: float) -> float:
        return b


def test_the_repair_threshold_is_half() -> None:
    assert REPAIR_MAX_MISSING == 0.5  # the rows below are its boundaries


@pytest.mark.parametrize(("wanted", "present", "counts_match", "plan"), [
    (W4, set(W4), True, "adopt"),
    (W4, set(W4), False, "repair"),  # same UIDs, other bytes: the repair re-checks them
    (W4, {"a", "b", "c"}, True, "repair"),
    (W4, {"a", "b"}, True, "repair"),  # exactly half missing
    (W4, {"a"}, True, "zip"),  # more than half missing
    (["a", "b", "c"], {"a", "b"}, True, "repair"),  # 1 of 3 missing
    (["a", "b", "c"], {"a"}, True, "zip"),  # 2 of 3 missing
    (["a", "b"], {"a", "b", "x"}, True, "repair"),  # a foreign file beside them
    (["a", "b"], {"x"}, True, "zip"),
    ([], {"a"}, True, "zip"),  # the server lists nothing: only the ZIP can tell
    ([], set(), True, "zip"),
])
def test_sop_plan(wanted: list[str], present: set[str], counts_match: bool, plan: str) -> None:
    assert sop_plan(wanted, present, counts_match) == plan


@pytest.mark.parametrize(("error", "attempts", "take_zip"), [
    (PermanentApiError("HTTP 400"), 1, True),  # refused: the ZIP at once
    (PermanentApiError("HTTP 404"), 2, True),
    (TransientApiError("HTTP 503"), 1, False),  # first attempt: retry the series
    (TransientApiError("HTTP 503"), 2, True),  # failed again: the ZIP
    (ProtocolError("not JSON"), 1, False),
    (ProtocolError("not JSON"), 3, True),
])
def test_zip_after_sop_error(error: ApiError, attempts: int, take_zip: bool) -> None:
    assert zip_after_sop_error(error, attempts) is take_zip


def full_disk() -> StorageError:
    try:
        raise OSError(errno.ENOSPC, "No space left on device")
    except OSError as exc:
        try:
            raise StorageError("cannot write x") from exc
        except StorageError as err:
            return err


ONE_SHOT = RetryPolicy(max_attempts=3)
DAEMON = RetryPolicy(max_attempts=3, keep_trying_when_full=True)


@pytest.mark.parametrize(("policy", "error", "attempts", "gives_up"), [
    (ONE_SHOT, PermanentApiError("HTTP 400"), 1, True),
    (ONE_SHOT, HostileArchive("../x"), 1, True),
    (ONE_SHOT, TransientApiError("HTTP 503"), 1, False),
    (ONE_SHOT, TransientApiError("HTTP 503"), 2, False),
    (ONE_SHOT, TransientApiError("HTTP 503"), 3, True),  # at max_attempts
    (ONE_SHOT, VerificationError("MD5"), 4, True),
    (ONE_SHOT, StorageError("cannot write x"), 1, True),  # permission, I/O: permanent
    (ONE_SHOT, full_disk(), 2, False),
    (ONE_SHOT, full_disk(), 3, True),  # a one-shot run gives up on a full disk too
    (ONE_SHOT, StorageFull("ENOSPC"), 3, True),
    (DAEMON, full_disk(), 3, False),  # the daemon never does
    (DAEMON, StorageFull("ENOSPC"), 99, False),
    (DAEMON, TransientApiError("HTTP 503"), 3, True),  # other errors: as one-shot
    (DAEMON, PermanentApiError("HTTP 400"), 1, True),
])
def test_gives_up(policy: RetryPolicy, error: MirrorError, attempts: int,
                  gives_up: bool) -> None:
    assert policy.gives_up(attempts, error) is gives_up
    retry_at = policy.next_attempt(attempts, now=NOW, error=error)
    assert (retry_at is None) is gives_up


@pytest.mark.parametrize(("attempts", "retry_after", "delay"), [
    (1, None, 2.0),  # backoff ceiling: series_base
    (3, None, 8.0),
    (9, None, 60.0),  # capped at series_cap
    (1, 30.0, 30.0),  # Retry-After longer than the backoff wins
    (3, 5.0, 8.0),  # shorter: the backoff wins
    (1, 10_000.0, 900.0),  # clamped to retry_after_clamp, whatever the error carries
    (1, 0.0, 2.0),
])
def test_series_retry_time(attempts: int, retry_after: float | None, delay: float) -> None:
    policy = RetryPolicy(series_base=2.0, series_cap=60.0, retry_after_clamp=900.0)
    error = TransientApiError("HTTP 429", retry_after=retry_after)
    due = policy.retry_time(attempts, now=NOW, error=error, rng=MaxRandom())
    assert due - NOW == timedelta(seconds=delay)


@pytest.mark.parametrize(("error", "attempt", "delay"), [
    (TransientApiError("HTTP 503"), 1, 0.25),
    (TransientApiError("HTTP 503", retry_after=3.0), 1, 3.0),
    (TransientApiError("HTTP 503", retry_after=50.0), 1, None),  # too long to wait here
    (TransientApiError("HTTP 503"), 4, None),  # retries exhausted
    (TransientApiError("cut off", in_place=False), 1, None),  # rescheduled, not repeated
    (SourceUnreachable("refused"), 1, 0.25),
    (SourceUnreachable("TLS", in_place=False), 1, None),
    (PermanentApiError("HTTP 400"), 1, None),
    (ProtocolError("not JSON"), 1, None),  # transient for the series, not in place
    (ValueError("not ours"), 1, None),
])
def test_in_place_delay(error: BaseException, attempt: int, delay: float | None) -> None:
    policy = RetryPolicy(retries=3, base=0.25, cap=10.0, max_retry_after=20.0)
    assert policy.in_place_delay(attempt, error, rng=MaxRandom()) == delay


def test_from_settings_reads_source_and_sync() -> None:
    from mirror.config.settings import Settings

    settings = Settings()
    one_shot = RetryPolicy.from_settings(settings)
    assert (one_shot.retries, one_shot.max_attempts, one_shot.series_base,
            one_shot.series_cap, one_shot.retry_after_clamp, one_shot.keep_trying_when_full) == (
        settings.source.retries, settings.sync.max_attempts, settings.sync.retry_backoff,
        settings.sync.retry_backoff_cap, settings.source.max_retry_after, False)
    assert RetryPolicy.from_settings(settings, daemon=True).keep_trying_when_full
