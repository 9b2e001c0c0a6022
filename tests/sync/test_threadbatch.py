"""Batched thread hops: concurrent calls share a hop, each keeps its own outcome."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import anyio
import pytest

from mirror.sync.threadbatch import Call, ThreadBatch, calls

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_concurrent_calls_share_hops_and_keep_their_own_outcomes() -> None:
    batches: list[list[int]] = []
    gate = threading.Event()

    def run(batch: Sequence[int]) -> list[object]:
        gate.wait(5)  # the first hop holds until everyone has queued behind it
        batches.append(list(batch))
        return [ValueError(n) if n % 3 == 0 else n * 10 for n in batch]

    hops: ThreadBatch[int, int] = ThreadBatch(run)
    got: dict[int, object] = {}

    async def one(n: int) -> None:
        try:
            got[n] = await hops.submit(n)
        except ValueError as exc:
            got[n] = exc

    async with anyio.create_task_group() as tg:
        for n in range(1, 9):
            tg.start_soon(one, n)
        await anyio.wait_all_tasks_blocked()
        gate.set()
    assert batches == [[1], [2, 3, 4, 5, 6, 7, 8]]
    assert {n: v for n, v in got.items() if not isinstance(v, Exception)} == {
        n: n * 10 for n in (1, 2, 4, 5, 7, 8)}
    assert sorted(v.args[0] for v in got.values() if isinstance(v, ValueError)) == [3, 6]


async def test_a_cancelled_caller_whose_call_runs_waits_for_it() -> None:
    started, release = threading.Event(), threading.Event()
    done: list[str] = []

    def slow(name: str) -> str:
        started.set()
        release.wait(5)
        done.append(name)
        return name

    hops: ThreadBatch[Call[str], str] = ThreadBatch(calls)
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(hops.submit, (slow, ("a",)))
            await anyio.to_thread.run_sync(started.wait, 5)
            scope.cancel()
            release.set()
    assert done == ["a"]  # the call was not abandoned half-way
    assert await hops.submit((str.upper, ("b",))) == "B"  # and the batcher goes on


async def test_a_caller_cancelled_before_its_hop_is_withdrawn() -> None:
    release = threading.Event()
    ran: list[str] = []

    def step(name: str) -> None:
        release.wait(5)
        ran.append(name)

    hops: ThreadBatch[Call[None], None] = ThreadBatch(calls)
    async with anyio.create_task_group() as tg:
        tg.start_soon(hops.submit, (step, ("first",)))
        await anyio.wait_all_tasks_blocked()
        with anyio.CancelScope() as waiting:
            waiting.cancel()
            await hops.submit((step, ("second",)))
        release.set()
    assert ran == ["first"]
