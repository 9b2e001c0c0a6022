"""How often the garbage collector runs while a listing is recorded.

A listing allocates millions of short-lived objects (records, rows, parameter tuples)
that reference counting frees as soon as their batch is written. At the default
threshold (a young-generation collection every 700 allocations) the collector ran
~1,500 times for NLST's 200,000 series, and every tenth of those promotions led to a
walk of the whole heap, freeing next to nothing: ~10% of a first discovery's CPU time.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

#: Allocations between two young-generation collections while a listing is recorded.
LISTING_THRESHOLD = 100_000

_running = 0
_saved = 0


@contextmanager
def few_collections() -> Iterator[None]:
    """Collect ~100x less often inside the block; the polls of several collections may
    overlap, so the threshold is restored when the last of them ends."""
    global _running, _saved
    if _running == 0:
        first, *older = gc.get_threshold()
        _saved = first
        gc.set_threshold(max(first, LISTING_THRESHOLD), *older)
    _running += 1
    try:
        yield
    finally:
        _running -= 1
        if _running == 0:
            gc.set_threshold(_saved, *gc.get_threshold()[1:])
