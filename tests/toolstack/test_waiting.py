"""Waiting for another operation to end: xapi's back-off, wake-up, cap and limit.

`OperationWaits` on its own (a clock whose sleeps end only when told, so that only the
wake-up can end them), then through the guard on a simulated pool.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import pytest

from tests.toolstack.harness import GIB, Pool, small_pool
from xenmem.errors import OTHER_OPERATION_IN_PROGRESS, XenAPIError
from xenmem.toolstack.guard import vm_operation
from xenmem.toolstack.records import VmOperation
from xenmem.toolstack.waiting import OperationWaits, RetryPolicy
from xenmem.xen import VirtualClock

BUSY = OTHER_OPERATION_IN_PROGRESS("VM", "OpaqueRef:vm", "start", "OpaqueRef:task")


class StillClock:
    """A clock at 0 whose sleeps never end by themselves."""

    def now(self) -> float:
        return 0.0

    async def sleep(self, seconds: float) -> None:
        await asyncio.Event().wait()


def run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coroutine)


def test_a_back_off_sleeps_min_plus_a_random_share_of_the_range() -> None:
    clock = VirtualClock()
    waits = OperationWaits(RetryPolicy(), clock, lambda: 0.5)
    assert run(waits.back_off(BUSY, 0.0)) == 1.0 + 19.0 * 0.5
    assert clock.now() == 10.5
    assert waits.sleeping == 0


def test_the_limit_is_checked_before_sleeping_and_raises_the_last_error() -> None:
    clock = VirtualClock()
    waits = OperationWaits(RetryPolicy(limit_s=30.0), clock, lambda: 1.0)
    assert run(waits.back_off(BUSY, 29.0)) == 20.0  # may overrun the limit, as in xapi
    with pytest.raises(XenAPIError) as caught:
        run(waits.back_off(BUSY, 30.0))
    assert caught.value is BUSY
    assert clock.now() == 20.0


def test_a_limit_of_zero_refuses_at_once() -> None:
    waits = OperationWaits(RetryPolicy(limit_s=0.0), StillClock(), lambda: 0.0)
    with pytest.raises(XenAPIError) as caught:
        run(waits.back_off(BUSY, 0.0))
    assert caught.value is BUSY


def test_an_operation_ending_wakes_every_sleeper() -> None:
    async def scenario() -> list[float]:
        waits = OperationWaits(RetryPolicy(), StillClock(), lambda: 0.0)
        sleepers = [asyncio.create_task(waits.back_off(BUSY, 0.0)) for _ in range(3)]
        await asyncio.sleep(0)
        assert waits.sleeping == 3
        waits.ended()
        slept = await asyncio.gather(*sleepers)
        assert waits.sleeping == 0
        return slept

    assert run(scenario()) == [0.0, 0.0, 0.0]


def test_more_than_max_waiting_sleepers_get_too_many_pending_tasks() -> None:
    """xapi's queue_thread refuses when more than the maximum already sleep: with a
    maximum of 2, three may sleep and the fourth is refused."""

    async def scenario() -> list[str]:
        waits = OperationWaits(RetryPolicy(max_waiting=2), StillClock(), lambda: 0.0)
        sleepers = [asyncio.create_task(waits.back_off(BUSY, 0.0)) for _ in range(3)]
        await asyncio.sleep(0)
        with pytest.raises(XenAPIError) as caught:
            await waits.back_off(BUSY, 0.0)
        # A cancelled sleeper no longer counts: there is room for one again.
        sleepers[0].cancel()
        await asyncio.sleep(0)
        assert waits.sleeping == 2
        late = asyncio.create_task(waits.back_off(BUSY, 0.0))
        await asyncio.sleep(0)
        assert waits.sleeping == 3
        waits.ended()
        await asyncio.gather(late, *sleepers[1:])
        return caught.value.description

    assert run(scenario()) == ["TOO_MANY_PENDING_TASKS"]


def test_a_call_waits_for_the_operation_in_progress_then_gives_up() -> None:
    """On the virtual clock a call that never gets its turn sleeps out the 2 hours
    (20 s at a time here) and answers the last error."""
    pool = Pool(small_pool(), retry=RetryPolicy(min_delay_s=20.0))
    vm = pool.vm()
    with pool.store.transaction() as tx:
        tx.update("VM", vm, {"current_operations": {"OpaqueRef:task": "changing_static_range"}})
    before = pool.clock.now()
    assert pool.error("VM.set_memory", vm, 2 * GIB) == [
        "OTHER_OPERATION_IN_PROGRESS",
        "VM",
        vm,
        "changing_static_range",
        "OpaqueRef:task",
    ]
    assert pool.clock.now() - before == 7200.0
    assert pool.record("VM", vm)["memory_static_max"] == 4 * GIB


def test_a_waiting_call_runs_once_the_operation_ends() -> None:
    pool = Pool(small_pool())
    vm = pool.vm()

    async def scenario() -> None:
        release = asyncio.Event()

        async def holder() -> None:
            async with vm_operation(pool.ctx, vm, VmOperation.CHANGING_STATIC_RANGE):
                await release.wait()

        holding = asyncio.create_task(holder())
        await asyncio.sleep(0)
        waiter = asyncio.create_task(pool.call_async("VM.set_memory", vm, 2 * GIB))
        for _ in range(5):
            await asyncio.sleep(0)
        assert not waiter.done()
        assert pool.runtime.waits.sleeping == 1
        release.set()
        await asyncio.gather(holding, waiter)

    run(scenario())
    assert pool.record("VM", vm)["memory_static_max"] == 2 * GIB
    assert pool.record("VM", vm)["current_operations"] == {}
    assert pool.runtime.waits.sleeping == 0


def test_other_errors_are_not_waited_for() -> None:
    pool = Pool(small_pool())
    vm = pool.vm()
    with pool.store.transaction() as tx:
        tx.update("VM", vm, {"current_operations": {"OpaqueRef:task": "start"}})
    before = pool.clock.now()
    assert pool.error("VM.set_memory_target_live", vm, GIB)[0] == "VM_BAD_POWER_STATE"
    assert pool.clock.now() == before
