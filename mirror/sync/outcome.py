"""What one attempt at one series came to (:class:`Outcome`), shared by the job and the pool.

The per-series job (:mod:`mirror.sync.job`) makes it, the pool (:mod:`mirror.sync.pool`)
counts it (:class:`PoolStats`, a run's tallies) and hands it to the run's reporter;
living apart from both keeps the job free of any import of the pool.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

#: done: committed; retry: failed, due again later; failed: gave up for good;
#: lost: failed and the failure could not even be recorded (the lease was gone).
#: A cancelled attempt has no outcome: the series is released and the cancel goes on.
OutcomeStatus = Literal["done", "retry", "failed", "lost"]
#: How a done series got its copy: the whole ZIP, instance-by-instance repair, or the
#: files already on disk adopted as they are ("" until done).
FetchMode = Literal["full", "repair", "adopt", ""]


@dataclass
class Outcome:
    """One attempt at one series, as the run reports it."""

    series_uid: str
    collection: str
    status: OutcomeStatus
    mode: FetchMode = ""
    bytes: int = 0
    instances: int = 0
    seconds: float = 0.0
    attempt: int = 0
    error: str = ""


@dataclass
class PoolStats:
    done: int = 0
    failed: int = 0
    retried: int = 0
    bytes: int = 0
    outcomes: list[Outcome] = field(default_factory=list)
    #: one-shot runs: series still queued whose next attempt lies beyond the horizon
    deferred: list[dict[str, str | None]] = field(default_factory=list)

    def add(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)
        if outcome.status == "done":
            self.done += 1
            self.bytes += outcome.bytes
        elif outcome.status == "failed":
            self.failed += 1
        elif outcome.status == "retry":
            self.retried += 1
