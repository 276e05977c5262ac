"""Tasks: `Async.` calls run in the background and report through a task record (§6.4).

A finished task's `result` is the result rendered as one XML-RPC `<value>` - also for
JSON-RPC clients, as xapi does (XO parses it as XML-RPC).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime

from xenmem.db import Store
from xenmem.errors import (
    OPERATION_NOT_ALLOWED,
    TASK_CANCELLED,
    XenAPIError,
    logged_internal_error,
)
from xenmem.toolstack import Context
from xenmem.xenapi.xmlrpc import render_value

__all__ = ["Tasks"]

log = logging.getLogger(__name__)


class Tasks:
    def __init__(self, store: Store, this_host: str) -> None:
        self._store = store
        self._this_host = this_host
        self._running: dict[str, asyncio.Task[None]] = {}

    def start(self, name: str, run: Callable[[Context], Awaitable[object]], ctx: Context) -> str:
        """Create a pending task and run `run` in the background; return the task's ref."""
        with self._store.transaction() as tx:
            task = tx.create(
                "task",
                {
                    "name_label": name,
                    "created": datetime.now(UTC),
                    "resident_on": self._this_host,
                    "allowed_operations": ["cancel"],
                },
            )
        context = replace(ctx, task=task)
        self._running[task] = asyncio.get_running_loop().create_task(self._run(task, run, context))
        return task

    async def _run(
        self, task: str, run: Callable[[Context], Awaitable[object]], ctx: Context
    ) -> None:
        try:
            result = await run(ctx)
        except asyncio.CancelledError:
            self._finish(task, "cancelled", error=TASK_CANCELLED(task).description)
        except XenAPIError as error:
            self._finish(task, "failure", error=error.description)
        except Exception:  # a bug or a failed write must fail the task, not vanish with it
            internal = logged_internal_error(log, f"task {task}")
            self._finish(task, "failure", error=internal.description)
        else:
            self._finish(task, "success", result=render_value("" if result is None else result))
        finally:
            self._running.pop(task, None)

    def _finish(
        self, task: str, status: str, *, result: str = "", error: list[str] | None = None
    ) -> None:
        if self._store.get("task", task) is None:
            return  # destroyed while running
        changes: dict[str, object] = {
            "status": status,
            "finished": datetime.now(UTC),
            "allowed_operations": ["destroy"],
            "result": result,
            "error_info": error or [],
        }
        if status == "success":
            changes["progress"] = 1.0
        with self._store.transaction() as tx:
            tx.update("task", task, changes)

    def cancel(self, ctx: Context, task: str) -> None:
        record = ctx.record("task", task)
        running = self._running.get(task)
        if record["status"] != "pending" or running is None:
            raise OPERATION_NOT_ALLOWED(f"task {task} is {record['status']}, not pending")
        with self._store.transaction() as tx:
            tx.update("task", task, {"status": "cancelling", "allowed_operations": []})
        running.cancel()

    def destroy(self, ctx: Context, task: str) -> None:
        ctx.record("task", task)
        running = self._running.pop(task, None)
        if running is not None:
            running.cancel()
        with self._store.transaction() as tx:
            tx.delete("task", task)
