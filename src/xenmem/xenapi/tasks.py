"""Tasks: `Async.` calls run in the background and report through a task record (§6.4).

A finished task's `result` is the result rendered as one XML-RPC `<value>` - also for
JSON-RPC clients, as xapi does (XO parses it as XML-RPC).

A task belongs to the user of the session that started it: only that user, or a role
holding `task.destroy/any`, may cancel, destroy or change it (xapi's taskHelper).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime
from typing import cast

from xenmem.db import Store
from xenmem.errors import (
    OPERATION_NOT_ALLOWED,
    RBAC_PERMISSION_DENIED,
    TASK_CANCELLED,
    XenAPIError,
    logged_internal_error,
)
from xenmem.toolstack import Context
from xenmem.xenapi.collector import TaskAge
from xenmem.xenapi.roles import POOL_OPERATOR, ROLES, at_least
from xenmem.xenapi.xmlrpc import render_value

__all__ = ["TASK_DESTROY_ANY", "Tasks"]

log = logging.getLogger(__name__)

_UNFINISHED = frozenset({"pending", "cancelling"})
TASK_DESTROY_ANY = "task.destroy/any"
_DESTROY_ANY_ROLES = at_least(POOL_OPERATOR)
# xapi's text, naming the roles that hold the permission, strongest first (rbac.ml).
_NOT_YOURS = "No permission in user session. (Roles with this permission: {})".format(
    ", ".join(role for role in ROLES if role in _DESTROY_ANY_ROLES)
)


class Tasks:
    def __init__(self, store: Store, this_host: str, role_of: Callable[[str], str]) -> None:
        self._store = store
        self._this_host = this_host
        self._role_of = role_of
        self._running: dict[str, asyncio.Task[None]] = {}
        self._owners: dict[str, str] = {}  # task → the session that started it

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
        self._owners[task] = ctx.session
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

    def finish_forwarded(self, task: str, error: XenAPIError | None = None) -> None:
        """Complete a pending task a client made and named in an HTTP request
        (`task_id`), as xapi does when the handler returns: success with an empty
        result, or failure with `error`. Tasks of this server's own calls, finished
        ones and unknown refs are left alone."""
        record = self._store.get("task", task)
        if record is None or record["status"] != "pending" or task in self._running:
            return
        if error is None:
            self._finish(task, "success", result="")
        else:
            self._finish(task, "failure", error=error.description)

    def ages(self) -> list[TaskAge]:
        return [
            TaskAge(
                ref=ref,
                pending=record["status"] in _UNFINISHED,
                created_s=_seconds(record["created"]),
                finished_s=_seconds(record["finished"]),
                progress=cast(float, record["progress"]),
            )
            for ref, record in self._store.records("task").items()
        ]

    def busy_sessions(self) -> frozenset[str]:
        """The sessions that started a task still pending."""
        return frozenset(
            self._owners[ref]
            for ref, record in self._store.records("task").items()
            if record["status"] in _UNFINISHED and ref in self._owners
        )

    def forget(self, tasks: Iterable[str]) -> None:
        """Destroy these tasks' records (those still there) without asking: the collector's
        way. One still running goes on, unreported (as xapi's)."""
        with self._store.transaction() as tx:
            for task in tasks:
                self._owners.pop(task, None)
                if tx.get("task", task) is not None:
                    tx.delete("task", task)

    def assert_may_change(self, ctx: Context, task: str) -> None:
        """RBAC_PERMISSION_DENIED [task.destroy/any, ...] unless the caller's session has
        the user of the task's session, or a role holding task.destroy/any. A task whose
        session has ended belongs to nobody (xapi: any failure to compare means not own)."""
        if ctx.task == task or self._same_user(ctx.session, self._owners.get(task)):
            return
        if self._role_of(ctx.session) not in _DESTROY_ANY_ROLES:
            raise RBAC_PERMISSION_DENIED(TASK_DESTROY_ANY, _NOT_YOURS)

    def _same_user(self, session: str, owner: str | None) -> bool:
        mine = self._store.get("session", session)
        theirs = None if owner is None else self._store.get("session", owner)
        if mine is None or theirs is None:
            return False
        return mine["auth_user_name"] == theirs["auth_user_name"]

    def cancel(self, ctx: Context, task: str) -> None:
        record = ctx.record("task", task)
        self.assert_may_change(ctx, task)
        running = self._running.get(task)
        if record["status"] != "pending" or running is None:
            raise OPERATION_NOT_ALLOWED(f"task {task} is {record['status']}, not pending")
        with self._store.transaction() as tx:
            tx.update("task", task, {"status": "cancelling", "allowed_operations": []})
        running.cancel()

    def destroy(self, ctx: Context, task: str) -> None:
        ctx.record("task", task)
        self.assert_may_change(ctx, task)
        running = self._running.pop(task, None)
        if running is not None:
            running.cancel()
        self._owners.pop(task, None)
        with self._store.transaction() as tx:
            tx.delete("task", task)

    def owned(self, change: Callable[..., object]) -> Callable[..., object]:
        """A task setter's body, run only for whoever may change the task."""

        def body(ctx: Context, task: str, *args: object) -> object:
            ctx.record("task", task)
            self.assert_may_change(ctx, task)
            return change(ctx, task, *args)

        return body


def _seconds(moment: object) -> float:
    return cast(datetime, moment).timestamp()
