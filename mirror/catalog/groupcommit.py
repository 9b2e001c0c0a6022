"""Group commit: requests that arrive while one transaction runs share the next one.

Many small series finish within a few milliseconds of each other; one write
transaction (BEGIN, a few set-based statements, COMMIT) per *batch* instead of per
series divides the fixed cost of a transaction by the batch size. Nobody waits for a
timer: the first request runs at once, and whatever queued up meanwhile goes next.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import anyio

R = TypeVar("R")
#: Runs one batch in one transaction; one entry per request: None (done) or its error.
#: Raising means the whole transaction failed (nothing of the batch was written).
BatchRunner = Callable[[Sequence[R]], Awaitable[list[BaseException | None]]]


@dataclass(slots=True)
class _Slot(Generic[R]):
    request: R
    done: bool = False
    error: BaseException | None = None


class GroupCommit(Generic[R]):
    """Batches concurrent :meth:`submit` calls of one event loop into few transactions.

    A batch whose transaction fails as a whole (a database error, not a per-request
    outcome such as a lost lease) is run again one request at a time, so one bad
    request cannot fail the others with it.
    """

    def __init__(self, run_batch: BatchRunner[R]) -> None:
        self._run_batch = run_batch
        self._pending: list[_Slot[R]] = []
        self._busy = False
        self._finished: anyio.Event | None = None

    async def submit(self, request: R) -> None:
        """Commit *request* (alone or with others); raises its own error, if any."""
        slot = _Slot(request)
        self._pending.append(slot)
        while not slot.done:
            if not self._busy:
                try:
                    await self._lead()
                except BaseException:
                    if slot in self._pending:
                        self._pending.remove(slot)
                    raise
                continue
            finished = self._finished
            assert finished is not None
            try:
                await finished.wait()
            except BaseException:
                if slot in self._pending:  # not taken yet: withdraw it
                    self._pending.remove(slot)
                raise
        if slot.error is not None:
            raise slot.error

    async def _lead(self) -> None:
        """Run everything pending as one batch; wake the waiters when it is over."""
        self._busy, self._finished = True, anyio.Event()
        finished = self._finished
        batch, self._pending = self._pending, []
        try:
            errors = await self._attempt(batch)
        except BaseException:
            # cancelled (or a bug) mid-transaction: it rolled back, nothing is done;
            # the others go back to the queue for the next leader
            self._pending[:0] = [s for s in batch if not s.done]
            raise
        finally:
            self._busy = False
            finished.set()
        for slot, error in zip(batch, errors, strict=True):
            slot.done, slot.error = True, error

    async def _attempt(self, batch: list[_Slot[R]]) -> list[BaseException | None]:
        requests = [s.request for s in batch]
        try:
            return await self._run_batch(requests)
        except Exception as exc:
            if len(batch) == 1:
                return [exc]
        errors: list[BaseException | None] = []
        for request in requests:  # isolate the request that broke the transaction
            try:
                errors.extend(await self._run_batch([request]))
            except Exception as exc:
                errors.append(exc)
        return errors
