"""Collecting tasks and sessions as xapi's database GC (db_gc_util.ml): each rule on the
pure decisions, then passes over an assembled server with small limits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.security.support import Loop, in_process
from tests.serving import PATIENCE_S
from xenmem.db.users import set_user
from xenmem.toolstack import Context
from xenmem.xenapi.app import XenAPIServer
from xenmem.xenapi.collector import (
    Collector,
    CollectorConfig,
    SessionUse,
    TaskAge,
    sessions_to_end,
    tasks_to_destroy,
)
from xenmem.xenapi.dispatch import Failure
from xenmem.xenapi.sessions import Sessions
from xenmem.xenapi.tasks import Tasks

XAPI = CollectorConfig()
DAY = 86400.0
NOW = 10 * DAY


def finished(ref: str, ago_s: float) -> TaskAge:
    return TaskAge(
        ref=ref, pending=False, created_s=NOW - ago_s - 1, finished_s=NOW - ago_s, progress=1.0
    )


def pending(ref: str, age_s: float, progress: float = 0.5) -> TaskAge:
    return TaskAge(ref=ref, pending=True, created_s=NOW - age_s, finished_s=0.0, progress=progress)


def test_finished_tasks_go_65_minutes_after_they_finished() -> None:
    tasks = [finished("old", 3900.5), finished("recent", 3899.5), pending("running", 3950)]
    destroyed, _ = tasks_to_destroy(tasks, NOW, {}, XAPI)
    assert destroyed == ["old"]


def test_a_day_old_pending_task_goes_after_a_pass_without_progress() -> None:
    stalled, moving = pending("stalled", DAY + 1), pending("moving", DAY + 1)
    young = pending("young", DAY - 100)
    destroyed, watched = tasks_to_destroy([stalled, moving, young], NOW, {}, XAPI)
    assert destroyed == []  # first seen overdue: on probation
    assert watched == {"stalled": 0.5, "moving": 0.5}
    later = [stalled, pending("moving", DAY + 31, progress=0.6), young]
    destroyed, watched = tasks_to_destroy(later, NOW + 30, watched, XAPI)
    assert destroyed == ["stalled"]
    assert watched == {"stalled": 0.5, "moving": 0.6}


def test_beyond_200_young_tasks_the_oldest_finished_go() -> None:
    running = [pending(f"p{i}", 60) for i in range(50)]
    done = [finished(f"f{i}", 3000 - i) for i in range(300)]  # f0 is the oldest
    destroyed, _ = tasks_to_destroy([*running, *done], NOW, {}, XAPI)
    # The newest 200 − 50 finished are kept; pending tasks always are.
    assert destroyed == [f"f{i}" for i in range(150)]
    destroyed, _ = tasks_to_destroy([*running, *done[:150]], NOW, {}, XAPI)
    assert destroyed == []


def test_pending_tasks_beyond_the_limit_leave_no_finished_one() -> None:
    running = [pending(f"p{i}", 60) for i in range(250)]
    done = [finished(f"f{i}", 100) for i in range(3)]
    destroyed, _ = tasks_to_destroy([*running, *done], NOW, {}, XAPI)
    assert destroyed == ["f0", "f1", "f2"]


def test_hung_tasks_do_not_count_as_young() -> None:
    hung = [pending(f"h{i}", DAY + 60) for i in range(150)]
    done = [finished(f"f{i}", 100 - i) for i in range(100)]
    watched = {t.ref: t.progress for t in hung}
    destroyed, _ = tasks_to_destroy([*hung, *done], NOW, watched, XAPI)
    assert sorted(destroyed) == sorted(t.ref for t in hung)


def use(ref: str, user: str, idle_s: float, originator: str = "") -> SessionUse:
    return SessionUse(ref=ref, user=user, originator=originator, idle_s=idle_s)


def test_sessions_idle_for_the_timeout_end() -> None:
    sessions = [use("idle", "alice", 61.0), use("busy", "alice", 59.0)]
    assert sessions_to_end(sessions, 60.0, XAPI) == ["idle"]


def test_each_group_keeps_its_most_recently_active_sessions() -> None:
    config = CollectorConfig(
        max_sessions_per_user_name=2, max_sessions_per_originator=3, max_anonymous_sessions=1
    )
    sessions = [
        *(use(f"alice{i}", "alice", idle_s=i) for i in range(4)),
        use("bob", "bob", idle_s=50),
        *(use(f"xo{i}", "root", idle_s=10 - i, originator="xo") for i in range(5)),
        use("xe", "root", idle_s=99, originator="xe"),
        *(use(f"anon{i}", name, idle_s=i) for i, name in enumerate(["root", "", "root"])),
    ]
    ended = sessions_to_end(sessions, DAY, config)
    assert sorted(ended) == ["alice2", "alice3", "anon1", "anon2", "xo0", "xo1"]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[XenAPIServer, Loop]]:
    with in_process(tmp_path / "state") as pair:
        yield pair


class Passes:
    """A collector over the server's store, its own sessions on a clock of our own, and
    the wall clock moved on at will."""

    def __init__(self, server: XenAPIServer, loop: Loop, config: CollectorConfig) -> None:
        self.store = server.store
        self.loop = loop
        self.now = 1000.0
        self.later_s = 0.0
        self.sessions = Sessions(
            server.store, server.conn, server.master, timeout=600.0, clock=lambda: self.now
        )
        self.tasks = Tasks(server.store, server.master, role_of=self.sessions.role)
        self.collector = Collector(
            self.tasks, self.sessions, config, clock=lambda: time.time() + self.later_s
        )

    def login(self, user: str, originator: str = "tests") -> str:
        self.now += 1.0
        login = self.sessions.login(user, f"{user}-pw" if user != "root" else "pw", "", originator)
        return self.loop.loop.run_until_complete(login)

    def task(self, session: str, seconds: float = 0.0) -> str:
        """A task that takes `seconds`: one of 0 s has finished when this returns."""

        async def run(ctx: Context) -> object:
            await asyncio.sleep(seconds)
            return "done"

        async def start() -> str:
            task = self.tasks.start("t", run, Context(store=self.store, session=session))
            while seconds == 0.0 and self.status(task) == "pending":
                await asyncio.sleep(0.01)
            return task

        return self.loop.loop.run_until_complete(asyncio.wait_for(start(), PATIENCE_S))

    def status(self, task: str) -> object:
        record = self.store.get("task", task)
        assert record is not None
        return record["status"]

    def valid(self, session: str) -> bool:
        return self.sessions.is_valid(session)


def test_a_pass_destroys_old_finished_tasks(served: tuple[XenAPIServer, Loop]) -> None:
    server, loop = served
    passes = Passes(server, loop, XAPI)
    session = passes.login("root")
    done = passes.task(session)
    assert server.store.get("task", done) is not None
    passes.collector.collect()
    assert server.store.get("task", done) is not None
    passes.later_s = 3901.0
    passes.collector.collect()
    assert server.store.get("task", done) is None


def test_a_pass_evicts_the_least_recently_active_sessions_but_never_refuses_a_login(
    served: tuple[XenAPIServer, Loop],
) -> None:
    server, loop = served
    passes = Passes(server, loop, CollectorConfig(max_sessions_per_user_name=3))
    first, second, *rest = [passes.login("read-only") for _ in range(5)]
    passes.now += 1.0
    passes.sessions.role(first)  # now the most recently active
    passes.collector.collect()
    assert [passes.valid(s) for s in (first, second, *rest)] == [True, False, False, True, True]
    assert server.store.get("session", second) is None
    assert passes.login("read-only")  # a login beyond the limit succeeds
    passes.collector.collect()
    assert sum(map(passes.valid, (first, *rest))) == 2


def test_a_session_with_a_pending_task_is_never_evicted(
    served: tuple[XenAPIServer, Loop],
) -> None:
    server, loop = served
    passes = Passes(server, loop, CollectorConfig(max_sessions_per_user_name=1))
    working = passes.login("read-only")
    task = passes.task(working, seconds=60.0)
    older, newer = passes.login("read-only"), passes.login("read-only")
    passes.collector.collect()
    # The working session neither counts nor goes; of the others the newer stays.
    assert [passes.valid(s) for s in (working, older, newer)] == [True, False, True]
    passes.tasks.destroy(Context(store=server.store, session=working), task)
    loop.loop.run_until_complete(asyncio.sleep(0.01))  # the task's cancellation ends it


def test_the_server_collects_every_interval(tmp_path: Path) -> None:
    with in_process(tmp_path / "state") as (server, loop):
        collector = Collector(
            server.tasks,
            server.sessions,
            CollectorConfig(interval_s=0.01, completed_task_timeout_s=0.0),
        )
        session = loop.login()
        task = loop.call("Async.host.compute_free_memory", session, server.master)

        async def collected() -> None:
            collector.start()
            while server.store.get("task", str(task)) is not None:
                await asyncio.sleep(0.01)
            await collector.stop()

        loop.loop.run_until_complete(asyncio.wait_for(collected(), PATIENCE_S))


def test_a_pass_ends_the_sessions_of_a_changed_user(served: tuple[XenAPIServer, Loop]) -> None:
    server, loop = served
    changed, kept = loop.login("vm-admin", "vm-admin-pw"), loop.login("read-only", "read-only-pw")
    token = loop.call("event.from", changed, ["pool"], "", 0.0)
    assert isinstance(token, dict)

    async def blocked_until_collected() -> object:
        blocked = asyncio.ensure_future(
            server.dispatcher.call("event.from", [changed, ["pool"], token["token"], 3600.0])
        )
        await asyncio.sleep(0.05)
        set_user(server.conn, "vm-admin", "read-only", "vm-admin-pw")  # demoted
        server.collector.collect()
        # Nothing changes in the pool and no test lasts an hour: the pass ended the call.
        return await asyncio.wait_for(blocked, PATIENCE_S)

    assert loop.loop.run_until_complete(blocked_until_collected()) == Failure(
        ["SESSION_INVALID", changed]
    )
    assert server.store.get("session", changed) is None
    assert isinstance(loop.call("VM.get_all", kept), list)


def test_a_pass_after_a_flood_lets_clients_in_between_batches(
    served: tuple[XenAPIServer, Loop], caplog: pytest.LogCaptureFixture
) -> None:
    server, loop = served
    finished_long_ago = datetime.now(UTC) - timedelta(hours=2)
    with server.store.transaction() as tx:
        flood = [
            tx.create(
                "task",
                {"status": "success", "created": finished_long_ago, "finished": finished_long_ago},
            )
            for _ in range(1800)
        ]
    collector = Collector(server.tasks, server.sessions, CollectorConfig(interval_s=60.0))
    seen: list[int] = []

    async def client() -> None:
        while server.store.count("task"):
            seen.append(server.store.count("task"))
            if len(seen) == 2:  # a client destroys a task the pass has yet to reach
                with server.store.transaction() as tx:
                    tx.delete("task", flood[-1])
            await asyncio.sleep(0)

    async def both() -> None:
        collector.start()
        await asyncio.wait_for(client(), 10.0)
        await collector.stop()

    loop.loop.run_until_complete(both())
    assert 1 < len(seen) < 1800
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
