"""The retry policy (:class:`RetryPolicy`): backoff with full jitter, bounded Retry-After.

Owns every retry decision: whether and how long a request is retried in place, whether
a failed series gives up or when it is due again. No I/O and no sleeping here: callers
(the TCIA transport for requests, the per-series job for whole series) ask and do the
waiting themselves. Every delay a server can ask for is clamped
(``[source] max_retry_after``): a hostile ``Retry-After`` never parks work for longer,
and garbage is ignored rather than raised.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, TypeGuard

from mirror.errors import MirrorError, SourceUnreachable, TransientApiError, is_storage_full

if TYPE_CHECKING:
    from mirror.config.settings import Settings

#: 2**62 is already far beyond any cap; bounding the exponent avoids float overflow.
_MAX_EXPONENT = 62
#: Default clamp for a server's Retry-After, in seconds (config: source.max_retry_after).
DEFAULT_MAX_RETRY_AFTER = 900.0
#: delta-seconds (RFC 9110 says digits; a sign or a fraction is tolerated, an exponent not).
_DELTA = re.compile(r"^[+-]?[0-9]{1,30}(\.[0-9]{1,30})?$")


def backoff_delay(attempt: int, *, base: float, cap: float,
                  rng: random.Random | None = None) -> float:
    """Seconds to wait before retry number *attempt* (1-based), "full jitter" style.

    The ceiling doubles per attempt (``base * 2**(attempt-1)``, at most *cap*) and the
    delay is drawn uniformly below it, so many clients failing together spread out
    instead of retrying in lock step (AWS architecture blog, "Exponential Backoff And
    Jitter").
    """
    if base <= 0 or cap <= 0:
        return 0.0
    exponent = min(max(attempt, 1) - 1, _MAX_EXPONENT)
    ceiling = min(cap, base * (2.0 ** exponent))
    return (rng or random).uniform(0.0, ceiling)


def retry_after_seconds(header_value: str, now: datetime, *,
                        cap: float = DEFAULT_MAX_RETRY_AFTER) -> float | None:
    """``Retry-After`` (delta seconds or an HTTP-date) -> seconds from *now*, in [0, cap].

    None when the value is unusable (empty, garbage, ``1e14``, NaN): the caller's own
    backoff applies then. Dates in the past give 0; a naive *now* is taken as UTC, as
    HTTP dates are. Never raises, whatever the server sent.
    """
    value = (header_value or "").strip()
    if not value or len(value) > 64:
        return None
    if _DELTA.match(value):
        seconds: float | None = float(value)
    else:
        seconds = _seconds_until_http_date(value, now)
    if seconds is None or seconds != seconds:  # NaN cannot come out of the regex; be sure
        return None
    return min(max(0.0, seconds), max(0.0, cap))


def _seconds_until_http_date(value: str, now: datetime) -> float | None:
    try:
        when = parsedate_to_datetime(value)
        if when is None:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        return (when - now).total_seconds()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


@dataclass(frozen=True)
class RetryPolicy:
    """Every retry decision of the program, in one immutable value built from the settings.

    Two tiers. *In place* (one request, by :class:`mirror.tcia.transport.Attempts`):
    up to *retries* retries after the first try, full-jitter backoff from *base* up to
    *cap*; a server asking (Retry-After) for more than *max_retry_after* seconds is not
    waited on in place, nor is an error whose ``in_place`` is False: the error goes up.
    *Series* (rescheduled in the catalog by the per-series job): permanent errors give
    up at once, transient ones after *max_attempts*; the next attempt waits full-jitter
    backoff from *series_base* up to *series_cap*, or the server's Retry-After clamped
    to *retry_after_clamp* (``source.max_retry_after``) if longer. With
    *keep_trying_when_full* (the daemon) a full disk never gives up: the series is not
    at fault and goes on once space is freed; a one-shot run gives up as for any error.
    """

    retries: int = 5
    base: float = 0.5
    cap: float = 30.0
    max_retry_after: float = 120.0
    max_attempts: int = 5
    series_base: float = 2.0
    series_cap: float = 300.0
    retry_after_clamp: float = DEFAULT_MAX_RETRY_AFTER
    keep_trying_when_full: bool = False

    @classmethod
    def from_settings(cls, settings: Settings, *, daemon: bool = False) -> RetryPolicy:
        """The policy ``[source]`` and ``[sync]`` describe; *daemon*: a long-running pool."""
        return cls(retries=settings.source.retries, max_attempts=settings.sync.max_attempts,
                   series_base=settings.sync.retry_backoff,
                   series_cap=settings.sync.retry_backoff_cap,
                   retry_after_clamp=settings.source.max_retry_after,
                   keep_trying_when_full=daemon)

    # -- in place: one request ---------------------------------------------------------

    def can_retry(self, attempt: int) -> bool:
        """True when retry number *attempt* (1-based) is still allowed."""
        return attempt <= self.retries

    def delay(self, attempt: int, retry_after: float | None = None,
              rng: random.Random | None = None) -> float | None:
        """Seconds before retry *attempt*, or None when it should not happen in place."""
        if not self.can_retry(attempt):
            return None
        if retry_after is not None and retry_after > self.max_retry_after:
            return None
        jittered = backoff_delay(attempt, base=self.base, cap=self.cap, rng=rng)
        return max(jittered, retry_after or 0.0)

    def in_place_delay(self, attempt: int, error: BaseException,
                       rng: random.Random | None = None) -> float | None:
        """Seconds before retrying the request that raised *error*; None: raise it."""
        if not retryable_in_place(error):
            return None
        return self.delay(attempt, error.retry_after, rng=rng)

    # -- a whole series: rescheduled in the catalog ------------------------------------

    def gives_up(self, attempts: int, error: MirrorError) -> bool:
        """Whether the failed attempt number *attempts* (1-based) of a series is final."""
        if not error.transient:
            return True
        if self.keep_trying_when_full and is_storage_full(error):
            return False
        return attempts >= self.max_attempts

    def retry_time(self, attempts: int, *, now: datetime, error: MirrorError,
                   rng: random.Random | None = None) -> datetime:
        """When a transiently failed series is due again (full jitter, Retry-After honoured
        up to *retry_after_clamp*, whatever the error carries)."""
        delay = backoff_delay(max(attempts, 1), base=self.series_base, cap=self.series_cap,
                              rng=rng)
        if error.retry_after is not None and error.retry_after > 0:
            delay = max(delay, min(error.retry_after, self.retry_after_clamp))
        return now + timedelta(seconds=delay)

    def next_attempt(self, attempts: int, *, now: datetime, error: MirrorError,
                     rng: random.Random | None = None) -> datetime | None:
        """The series' next attempt time, or None when it gives up."""
        if self.gives_up(attempts, error):
            return None
        return self.retry_time(attempts, now=now, error=error, rng=rng)


def retryable_in_place(exc: BaseException) -> TypeGuard[MirrorError]:
    """A transient request error worth repeating at once (with backoff)."""
    return isinstance(exc, TransientApiError | SourceUnreachable) and exc.in_place
