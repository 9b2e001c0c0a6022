"""The fixed-shape date fast path gives exactly what the strptime format list gives."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from mirror.tcia import dates


def _by_formats(text: str) -> datetime | None:
    for fmt in dates._DATETIME_FORMATS:
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


def _samples() -> list[str]:
    rng = random.Random(3)
    out = []
    for _ in range(4000):
        y, m, d = rng.randint(1, 9999), rng.randint(0, 14), rng.randint(0, 33)
        hh, mm, ss = rng.randint(0, 25), rng.randint(0, 61), rng.randint(0, 61)
        frac = str(rng.randint(0, 999999))[: rng.randint(0, 7)]
        out.append(f"{m:02d}-{d:02d}-{y:04d}")
        stamp = f"{y:04d}-{m:02d}-{d:02d} {hh:02d}:{mm:02d}:{ss:02d}"
        out.append(stamp + (f".{frac}" if rng.random() < 0.7 else ""))
    return [*out, "02-29-2024", "02-29-2023", "2000-01-01 00:00:00.", "1-02-2003",
            "01-02-03", "2000-01-01 00:00:00.+1", "2000-01-01 00:00:00.1e3"]


def test_fast_path_agrees_with_the_format_list() -> None:
    fast_hits = 0
    for text in _samples():
        fast, slow = dates._fast_datetime(text), _by_formats(text)
        if fast is not None:
            fast_hits += 1
            assert fast == slow, text
        if slow is not None:
            assert dates.to_datetime(text) == slow, text
    assert fast_hits > 1000  # the sample exercises the fast path, not only the fallback


def test_listing_shapes_take_the_fast_path() -> None:
    assert dates._fast_datetime("03-15-2010") == datetime(2010, 3, 15, tzinfo=UTC)
    assert dates._fast_datetime("2000-01-01 00:00:00.0") == datetime(2000, 1, 1, tzinfo=UTC)
