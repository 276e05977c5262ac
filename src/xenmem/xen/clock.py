"""The clock port: a virtual clock for tests and the `simulate` command, a real one for serving.

The squeezer is written once, as coroutines that read `now()` and `await sleep()`. On a
`VirtualClock`, `sleep` just moves time forward and never suspends, so `run_virtual` drives
such a coroutine to completion synchronously, without an event loop: a minutes-long
ballooning scenario runs in milliseconds and deterministically. On a `RealClock` the same
coroutine is an ordinary asyncio task.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from typing import Any, Protocol, TypeVar

__all__ = ["Clock", "RealClock", "VirtualClock", "run_virtual"]

_T = TypeVar("_T")
_MICROSECONDS = 1_000_000


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since an arbitrary origin; never goes backwards."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class VirtualClock:
    """Time that moves only when asked; kept in whole microseconds so steps never drift."""

    def __init__(self, start_s: float = 0.0) -> None:
        self._now_us = round(start_s * _MICROSECONDS)

    def now(self) -> float:
        # A correctly rounded quotient of exact integers: tick k reads exactly k / 10, as
        # the reference simulator's `tick / 10` does (squeezer.md §7.1 float caveat).
        return self._now_us / _MICROSECONDS

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"cannot move a clock backwards ({seconds} s)")
        self._now_us += round(seconds * _MICROSECONDS)

    async def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))


class RealClock:
    """Monotonic wall time, optionally sped up: `scale` simulated seconds per real second."""

    def __init__(self, scale: float = 1.0, *, start_s: float = 0.0) -> None:
        """`start_s`: the simulated time to resume at (a restart goes on from its past)."""
        if not scale > 0:
            raise ValueError(f"time scale must be positive, got {scale}")
        self._scale = scale
        self._start_s = start_s
        self._origin = time.monotonic()

    @property
    def scale(self) -> float:
        return self._scale

    def now(self) -> float:
        return self._start_s + (time.monotonic() - self._origin) * self._scale

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self._scale)


def run_virtual(coroutine: Coroutine[Any, Any, _T]) -> _T:
    """Run a coroutine that only ever awaits a `VirtualClock`, synchronously, to its result.

    Raises RuntimeError if the coroutine really suspends (it awaited something else), since
    nothing here could ever resume it.
    """
    try:
        coroutine.send(None)
    except StopIteration as finished:
        result: _T = finished.value
        return result
    coroutine.close()
    raise RuntimeError("coroutine suspended: run it on an event loop, not on the virtual clock")
