"""Pure retry policy: exponential backoff with full jitter and bounded Retry-After parsing.

No I/O and no sleeping here: callers (the TCIA client for requests, the workers for whole
series) ask how long to wait and do the waiting themselves. Every delay a server can ask
for is clamped (``[source] max_retry_after``): a hostile ``Retry-After`` never parks work
for longer, and garbage is ignored rather than raised.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

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
    """How often and how long to retry one request in place.

    *retries* counts retries after the first try. A server asking (via Retry-After) for
    more than *max_retry_after* seconds is not waited on in place: the error goes up so
    the caller can reschedule the whole job instead of holding a worker.
    """

    retries: int = 5
    base: float = 0.5
    cap: float = 30.0
    max_retry_after: float = 120.0

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
