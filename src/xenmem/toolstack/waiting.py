"""Waiting for another operation on a VM to end, as xapi's `Helpers.retry` does.

xapi runs every VM operation through `with_vm_operation` → `retry_with_global_lock`:
when the check answers OTHER_OPERATION_IN_PROGRESS, the call sleeps a random time between
1 and 20 s (`Repeat_with_uniform_backoff.standard`), is woken early whenever any operation
ends (`Early_wakeup.broadcast` wakes every sleeper, whatever it waits for), and tries
again; once it has slept 2 hours in all (the time actually slept; the check comes before
each sleep, so the last sleep may overrun) it gives up with the last
OTHER_OPERATION_IN_PROGRESS. At most 100 calls may sleep at once in the whole process
(`queue_thread`: the check is "more than 100" before counting this one, so the 102nd
gets TOO_MANY_PENDING_TASKS []). Every other error is raised at once.

Here the sleep is on the pool's clock (so `--time-scale` shortens it, as it does the
other toolstack timers), the random draw is the pool's, and a sleeper is an asyncio
waiter: it blocks no other client. Cancelling the task of an `Async.` call stops its
wait at once, and the task ends `cancelled` with TASK_CANCELLED [task] (xapi checks for
a cancellation before each attempt; here the cancellation itself interrupts the sleep).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from xenmem.errors import TOO_MANY_PENDING_TASKS, XenAPIError
from xenmem.xen import Clock

__all__ = ["OperationWaits", "RetryPolicy"]


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """How long a call waits for another operation to end; seconds on the pool's clock.

    The defaults are xapi's (`Policy.standard`, `max_number_of_queueing_threads`).
    """

    min_delay_s: float = 1.0
    max_delay_s: float = 20.0
    limit_s: float = 7200.0
    max_waiting: int = 100

    def __post_init__(self) -> None:
        if not 0 <= self.min_delay_s <= self.max_delay_s or self.limit_s < 0:
            raise ValueError(f"impossible retry policy: {self}")


class OperationWaits:
    """The calls sleeping until another operation ends, and their early wake-up."""

    def __init__(self, policy: RetryPolicy, clock: Clock, draw: Callable[[], float]) -> None:
        self.policy = policy
        self._clock = clock
        self._draw = draw
        self._sleepers: set[asyncio.Event] = set()
        self.sleeping = 0

    def ended(self) -> None:
        """An operation ended: wake every sleeper to try again (`Early_wakeup.broadcast`)."""
        for sleeper in self._sleepers:
            sleeper.set()

    async def back_off(self, error: XenAPIError, waited_s: float) -> float:
        """Sleep before the next attempt after `error` (OTHER_OPERATION_IN_PROGRESS), having
        slept `waited_s` so far; returns the seconds slept now. Raises `error` when the
        limit is reached, TOO_MANY_PENDING_TASKS when too many calls sleep already."""
        if self.sleeping > self.policy.max_waiting:
            raise TOO_MANY_PENDING_TASKS()
        self.sleeping += 1
        try:
            if waited_s >= self.policy.limit_s:
                raise error
            low, high = self.policy.min_delay_s, self.policy.max_delay_s
            return await self._sleep(low + (high - low) * self._draw())
        finally:
            self.sleeping -= 1

    async def _sleep(self, seconds: float) -> float:
        """Sleep `seconds` on the clock, or until `ended`; the seconds that passed."""
        woken = asyncio.Event()
        self._sleepers.add(woken)
        started = self._clock.now()
        waits = {
            asyncio.ensure_future(self._clock.sleep(seconds)),
            asyncio.ensure_future(woken.wait()),
        }
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
            self._sleepers.discard(woken)
        return self._clock.now() - started
