"""Batched thread hops: file-system calls of concurrent series jobs share one worker thread.

A thread hop (hand a call to a worker thread, wake it, get the result back into the
event loop) costs the event loop about as much CPU as extracting and committing a
one-instance series. Jobs that get here while a hop runs queue up and go together in
the next one; nobody waits for a timer (the first call runs at once), like the
catalog's group commit (:mod:`mirror.catalog.groupcommit`).

Each call keeps its own outcome: one that raises fails only its own job. A call that
was handed to the thread runs to its end even if its job is cancelled meanwhile: the
job waits for it shielded, as it would for ``anyio.to_thread.run_sync``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import anyio

Q = TypeVar("Q")
R = TypeVar("R")
#: Runs a batch of requests in a worker thread; one result or exception per request.
BatchFn = Callable[[Sequence[Q]], Sequence[R | Exception]]
#: A plain call for :func:`calls`: the function and its arguments.
Call = tuple[Callable[..., R], tuple[object, ...]]


@dataclass(slots=True, eq=False)
class _Slot(Generic[Q, R]):
    request: Q
    taken: bool = False
    done: bool = False
    result: R | None = None
    error: BaseException | None = None


@dataclass(eq=False)
class ThreadBatch(Generic[Q, R]):
    """Submit requests; each batch goes to a worker thread as one call of *run_batch*.

    *run_batch* gets the requests in submission order and returns, for each, its result
    or the exception it raised (which :meth:`submit` raises in that job only).
    """

    run_batch: BatchFn[Q, R]
    _pending: list[_Slot[Q, R]] = field(default_factory=list)
    _busy: bool = False
    _finished: anyio.Event | None = None

    async def submit(self, request: Q) -> R:
        slot: _Slot[Q, R] = _Slot(request)
        self._pending.append(slot)
        while not slot.done:
            if not self._busy:
                await self._lead()
                continue
            finished = self._finished
            assert finished is not None
            if slot.taken:  # running in the thread: its effects happen, wait for them
                with anyio.CancelScope(shield=True):
                    await finished.wait()
                continue
            try:
                await finished.wait()
            except BaseException:
                if not slot.taken and slot in self._pending:
                    self._pending.remove(slot)  # never handed over: withdrawn
                    raise
                with anyio.CancelScope(shield=True):  # taken meanwhile: see it through
                    while not slot.done:
                        await self._wait_round()
                raise
        if slot.error is not None:
            raise slot.error
        return slot.result  # type: ignore[return-value] # set with done, unless error

    async def _wait_round(self) -> None:
        if self._busy and self._finished is not None:
            await self._finished.wait()
        else:
            await self._lead()

    async def _lead(self) -> None:
        self._busy, self._finished = True, anyio.Event()
        finished = self._finished
        batch, self._pending = self._pending, []
        for slot in batch:
            slot.taken = True
        try:
            with anyio.CancelScope(shield=True):  # the batch runs to its end either way
                outcomes = await anyio.to_thread.run_sync(_run, self.run_batch, batch)
        except BaseException as exc:  # not one request's failure: all of them get it
            for slot in batch:
                slot.done, slot.error = True, exc
            raise
        finally:
            self._busy = False
            finished.set()
        for slot, (result, error) in zip(batch, outcomes, strict=True):
            slot.done, slot.result, slot.error = True, result, error


def _run(run_batch: BatchFn[Q, R],
         batch: list[_Slot[Q, R]]) -> list[tuple[R | None, BaseException | None]]:
    requests = [s.request for s in batch]
    try:
        got = list(run_batch(requests))
    except Exception as exc:  # a bug in the batch function: every request gets it
        return [(None, exc)] * len(batch)
    return [(None, r) if isinstance(r, BaseException) else (r, None) for r in got]


def calls(requests: Sequence[Call[R]]) -> list[R | Exception]:
    """A batch function for plain calls: each request is ``(fn, args)``."""
    out: list[R | Exception] = []
    for fn, args in requests:
        try:
            out.append(fn(*args))
        except Exception as exc:
            out.append(exc)
    return out
