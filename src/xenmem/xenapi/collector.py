"""Collecting what clients leave behind, as xapi's database GC (db_gc_util.ml): at start
and then every 30 s, tasks first, then sessions.

- A finished task goes 65 min after it finished; a pending one that has made no progress
  for a whole pass after being 24 h old goes too. Beyond 200 young tasks, the oldest
  finished ones go.
- A session without a pending task goes when it has been idle for the session timeout,
  or when it is beyond its group's share, least recently active first: 500 per user name
  (root's sessions are grouped by originator instead, 500 each), 400 of root's without
  an originator. A login is never refused for it.
- A session whose user's role or password changed goes (it would also at its next call),
  so that a call it has blocked in event.from ends.

The decisions are pure functions of what they are given (`tasks_to_destroy`,
`sessions_to_end`); `Collector` gathers the inputs and acts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from xenmem.xenapi.sessions import Sessions
    from xenmem.xenapi.tasks import Tasks

__all__ = [
    "Collector",
    "CollectorConfig",
    "SessionUse",
    "TaskAge",
    "sessions_to_end",
    "tasks_to_destroy",
]

log = logging.getLogger(__name__)

ROOT_NAMES = frozenset({"", "root"})
_BATCH = 500  # tasks destroyed per transaction (about 25 ms)


@dataclass(frozen=True, kw_only=True)
class CollectorConfig:
    """xapi's constants (xapi_globs.ml), seconds and counts; tests make them small."""

    interval_s: float = 30.0
    completed_task_timeout_s: float = 3900.0
    pending_task_timeout_s: float = 86400.0
    max_tasks: int = 200
    max_sessions_per_user_name: int = 500
    max_sessions_per_originator: int = 500
    max_anonymous_sessions: int = 400


class TaskAge(NamedTuple):
    """What the collector needs of a task: wall-clock seconds and its progress. (A tuple:
    a pass builds one per task, tens of thousands after a flood, and a frozen dataclass
    costs several times more to build.)"""

    ref: str
    pending: bool  # pending or cancelling: not yet finished
    created_s: float
    finished_s: float
    progress: float


@dataclass(frozen=True, kw_only=True)
class SessionUse:
    """A session without a pending task, and how long it has not been used."""

    ref: str
    user: str
    originator: str
    idle_s: float


def tasks_to_destroy(
    tasks: Iterable[TaskAge],
    now_s: float,
    watched: Mapping[str, float],
    config: CollectorConfig,
) -> tuple[list[str], dict[str, float]]:
    """The tasks to destroy now, and the progress of the old pending tasks to compare with
    at the next pass (`watched` is what the previous pass returned)."""
    old: list[TaskAge] = []
    young_finished: list[TaskAge] = []
    pending: list[TaskAge] = []
    for task in tasks:
        if task.pending:
            pending.append(task)
        elif task.finished_s < now_s - config.completed_task_timeout_s:
            old.append(task)
        else:
            young_finished.append(task)
    overdue = [t for t in pending if t.created_s < now_s - config.pending_task_timeout_s]
    # An overdue task is hung when it has not progressed since the previous pass; one not
    # seen at that pass is on probation until the next.
    hung = [
        t for t in overdue if t.ref in watched and t.progress - watched[t.ref] <= sys.float_info.min
    ]
    young_pending = len(pending) - len(hung)
    surplus: list[TaskAge] = []
    if young_pending + len(young_finished) > config.max_tasks:
        # xapi's rule before October 2025: keep the newest max_tasks − P finished tasks,
        # P being the young pending ones (its later rule subtracts the finished count).
        kept = max(0, config.max_tasks - young_pending)
        by_age = sorted(young_finished, key=lambda t: t.finished_s)
        surplus = by_age[: len(by_age) - kept]
    destroyed = [t.ref for t in (*hung, *old, *surplus)]
    return destroyed, {t.ref: t.progress for t in overdue}


def _share(session: SessionUse, config: CollectorConfig) -> tuple[str, int]:
    """The group a session counts in and that group's limit."""
    if session.user not in ROOT_NAMES:
        return f"username:{session.user}", config.max_sessions_per_user_name
    if session.originator:
        return f"originator:{session.originator}", config.max_sessions_per_originator
    return "anonymous", config.max_anonymous_sessions


def sessions_to_end(
    sessions: Iterable[SessionUse], timeout_s: float, config: CollectorConfig
) -> list[str]:
    """The sessions (none with a pending task) idle past `timeout_s`, then those beyond
    their group's share, least recently active first."""
    ended: list[str] = []
    groups: dict[str, tuple[int, list[SessionUse]]] = {}
    for session in sessions:
        if session.idle_s > timeout_s:
            ended.append(session.ref)
            continue
        name, limit = _share(session, config)
        groups.setdefault(name, (limit, []))[1].append(session)
    for limit, members in groups.values():
        members.sort(key=lambda s: s.idle_s)
        ended.extend(s.ref for s in members[limit:])
    return ended


class Collector:
    """Runs a pass at start and every `config.interval_s` (`start`/`stop`), or on demand.
    `clock` is the wall clock tasks are stamped with."""

    def __init__(
        self,
        tasks: Tasks,
        sessions: Sessions,
        config: CollectorConfig,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._tasks = tasks
        self._sessions = sessions
        self.config = config
        self._clock = clock
        self._watched: dict[str, float] = {}
        self._loop: asyncio.Task[None] | None = None

    def collect(self) -> None:
        """One whole pass, at once."""
        for _ in self._pass():
            pass

    def _pass(self) -> Iterator[None]:
        """A pass that pauses between batches of destroyed tasks, so that a pass after a
        flood of tasks does not hold up every client (each batch is one transaction)."""
        destroyed, self._watched = tasks_to_destroy(
            self._tasks.ages(), self._clock(), self._watched, self.config
        )
        for start in range(0, len(destroyed), _BATCH):
            self._tasks.forget(destroyed[start : start + _BATCH])
            yield
        self._sessions.end_outdated()
        unused = self._sessions.uses(excluding=self._tasks.busy_sessions())
        self._sessions.end_all(sessions_to_end(unused, self._sessions.timeout, self.config))

    def start(self) -> None:
        if self._loop is None:
            self._loop = asyncio.create_task(self._forever())

    async def stop(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
            self._loop = None

    async def _forever(self) -> None:
        while True:
            try:
                for _ in self._pass():
                    await asyncio.sleep(0)
            except Exception:  # a bug in one pass must not end collecting
                log.exception("collecting tasks and sessions failed")
            await asyncio.sleep(self.config.interval_s)
