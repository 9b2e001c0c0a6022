"""The pure retry policy: backoff bounds, jitter, Retry-After parsing, in-place decisions."""

import random
from datetime import UTC, datetime, timedelta, timezone

import pytest

from mirror.retry import RetryPolicy, backoff_delay, retry_after_seconds

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


class MaxRandom(random.Random):
    """Always draws the top of the range, to check the ceiling."""

    def uniform(self, a: float, b: float) -> float:
        return b


@pytest.mark.parametrize(("attempt", "base", "cap", "ceiling"), [
    (1, 0.5, 30.0, 0.5),
    (2, 0.5, 30.0, 1.0),
    (3, 0.5, 30.0, 2.0),
    (7, 0.5, 30.0, 30.0),  # 0.5 * 64 = 32 -> capped
    (0, 0.5, 30.0, 0.5),  # attempt below 1 is treated as the first
    (10_000, 1.0, 60.0, 60.0),  # no overflow for silly attempt numbers
    (3, 0.0, 30.0, 0.0),
])
def test_backoff_ceiling(attempt: int, base: float, cap: float, ceiling: float) -> None:
    assert backoff_delay(attempt, base=base, cap=cap, rng=MaxRandom()) == ceiling


def test_backoff_is_full_jitter_between_zero_and_ceiling() -> None:
    rng = random.Random(7)
    draws = [backoff_delay(4, base=1.0, cap=100.0, rng=rng) for _ in range(500)]
    assert all(0.0 <= d <= 8.0 for d in draws)
    assert min(draws) < 1.0 and max(draws) > 7.0  # spread over the whole range


def test_backoff_is_reproducible_with_a_seeded_rng() -> None:
    a = [backoff_delay(3, base=1, cap=10, rng=random.Random(1)) for _ in range(3)]
    b = [backoff_delay(3, base=1, cap=10, rng=random.Random(1)) for _ in range(3)]
    assert a == b


@pytest.mark.parametrize(("header", "expected"), [
    ("1", 1.0),
    ("  120 ", 120.0),
    ("0", 0.0),
    ("1.5", 1.5),
    ("-5", 0.0),
    ("Wed, 01 May 2024 12:00:30 GMT", 30.0),
    ("Wed, 01 May 2024 11:00:00 GMT", 0.0),  # in the past
    ("Wednesday, 01-May-24 12:01:00 GMT", 60.0),  # RFC 850 form
    ("", None),
    ("soon", None),
    ("nan", None),
    ("inf", None),
])
def test_retry_after_seconds(header: str, expected: float | None) -> None:
    assert retry_after_seconds(header, NOW) == expected


def test_retry_after_with_naive_now_is_utc() -> None:
    naive = NOW.replace(tzinfo=None)
    assert retry_after_seconds("Wed, 01 May 2024 12:00:10 GMT", naive) == 10.0


def test_retry_after_with_other_timezone_now() -> None:
    cest = NOW.astimezone(timezone(timedelta(hours=2)))
    assert retry_after_seconds("Wed, 01 May 2024 12:00:10 GMT", cest) == 10.0


@pytest.mark.parametrize(("attempt", "retry_after", "expected"), [
    (1, None, 0.25),
    (2, None, 0.5),
    (1, 3.0, 3.0),  # Retry-After wins over a shorter backoff
    (3, 0.1, 1.0),  # a backoff longer than Retry-After wins
    (4, None, None),  # retries exhausted
    (1, 50.0, None),  # too long to wait in place
])
def test_policy_delay(attempt: int, retry_after: float | None, expected: float | None) -> None:
    policy = RetryPolicy(retries=3, base=0.25, cap=10.0, max_retry_after=20.0)
    assert policy.delay(attempt, retry_after, rng=MaxRandom()) == expected


def test_policy_without_retries_never_retries() -> None:
    assert RetryPolicy(retries=0).delay(1) is None
    assert not RetryPolicy(retries=0).can_retry(1)
