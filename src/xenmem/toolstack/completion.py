"""Work that must finish once begun, whoever cancels the call that began it.

A start that has built a domain must record it; a cleanup must run to its end. Cancelling
such a step midway would leave Xen and the records disagreeing (a domain the records do
not know), so the step runs as its own task: a cancellation of the caller waits for the
step to finish, then takes effect.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["run_to_completion"]

_T = TypeVar("_T")


async def run_to_completion(step: Coroutine[Any, Any, _T]) -> _T:
    """Run `step` to its end and return its result (or raise its error). If the caller is
    cancelled meanwhile, the step still finishes; then the caller's cancellation is
    raised."""
    task = asyncio.ensure_future(step)
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done():  # the step itself was cancelled
                raise
            cancelled = True
            continue
        if cancelled:
            raise asyncio.CancelledError
        return result
