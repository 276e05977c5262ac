"""Access in process: every message needs a valid session (but login and listMethods), RBAC
holds for every message and role, sessions end at logout and after the idle timeout, and
failed logins are slowed down without holding up anyone else."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.security.support import DEAD, Loop, decodable_args, in_process, state_of
from tests.serving import PATIENCE_S
from xenmem.errors import XenAPIError
from xenmem.xenapi.app import XenAPIServer
from xenmem.xenapi.collector import Collector, CollectorConfig
from xenmem.xenapi.datamodel import Kind
from xenmem.xenapi.dispatch import Success
from xenmem.xenapi.model import MODEL
from xenmem.xenapi.roles import READ_ONLY, ROLES
from xenmem.xenapi.sessions import Sessions
from xenmem.xenapi.tasks import Tasks

NO_PERMISSION = "No permission in user session"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[XenAPIServer, Loop]]:
    with in_process(tmp_path_factory.mktemp("state")) as pair:
        yield pair


def _calls() -> Iterator[tuple[str, list[object]]]:
    """Every wire name a client can call with a session, with decodable arguments."""
    for m in MODEL.messages.values():
        if not m.session:
            continue
        yield m.wire_name, decodable_args(m)
        if m.is_async:
            yield f"Async.{m.wire_name}", decodable_args(m)


def test_only_login_goes_without_a_session() -> None:
    assert [m.wire_name for m in MODEL.messages.values() if not m.session] == [
        "session.login_with_password"
    ]


def test_every_other_call_needs_a_valid_session(served: tuple[XenAPIServer, Loop]) -> None:
    server, loop = served
    ended = loop.login()
    loop.call("session.logout", ended)
    before = state_of(server)
    calls = list(_calls())
    assert len(calls) > 400
    for method, args in calls:
        for session in (DEAD, ended, "", "OpaqueRef:NULL"):
            assert loop.call(method, session, *args) == ["SESSION_INVALID", session], method
    assert state_of(server) == before
    assert isinstance(loop.call("system.listMethods"), list)


def test_rbac_holds_for_every_message_and_role(served: tuple[XenAPIServer, Loop]) -> None:
    server, loop = served
    before = state_of(server)
    denied = 0
    for role in ROLES:
        session = loop.login(role, f"{role}-pw")
        for m in MODEL.messages.values():
            if not m.session or role in m.roles:
                continue
            for method in [m.wire_name] + ([f"Async.{m.wire_name}"] if m.is_async else []):
                reply = loop.call(method, session, *decodable_args(m))
                assert reply == ["RBAC_PERMISSION_DENIED", m.wire_name.lower(), NO_PERMISSION]
                denied += 1
        loop.call("session.logout", session)
    assert denied > 350
    assert state_of(server) == before


READ_ONLY_MAY = {
    "host.compute_free_memory",
    "host.compute_memory_overhead",
    "host.get_memory_ledger",
    "host.get_data_sources",
    "host.query_data_source",
    "VM.compute_memory_overhead",
    "VM.maximise_memory",
    "VM.assert_can_boot_here",
    "VM.get_cooperative",
    "VM.wait_memory_target_live",
    "VM.get_data_sources",
    "VM.query_data_source",
    "event.from",
}
MEMORY_AND_LIFECYCLE = {
    "VM.set_memory_dynamic_range",
    "VM.set_memory_dynamic_min",
    "VM.set_memory_dynamic_max",
    "VM.set_memory_static_range",
    "VM.set_memory_static_min",
    "VM.set_memory_static_max",
    "VM.set_memory_limits",
    "VM.set_memory",
    "VM.set_memory_target_live",
    "VM.set_HVM_shadow_multiplier",
    "VM.set_shadow_multiplier_live",
    "VM.set_VCPUs_max",
    "VM.set_VCPUs_at_startup",
    "VM.set_domain_type",
    "VM.set_HVM_boot_policy",
    "VM.start",
    "VM.start_on",
    "VM.clean_shutdown",
    "VM.hard_shutdown",
    "VM.suspend",
    "VM.resume",
    "VM.resume_on",
    "VM.pause",
    "VM.unpause",
    "VM.pool_migrate",
    "VM.clone",
    "VM.copy",
    "VM.snapshot",
    "VM.create",
    "VM.destroy",
}


def test_read_only_reads_and_computes_but_never_changes_memory() -> None:
    for m in MODEL.messages.values():
        reads = m.kind in (Kind.GET_FIELD, Kind.GET_RECORD, Kind.GET_ALL, Kind.GET_ALL_RECORDS)
        if reads or m.wire_name in READ_ONLY_MAY or m.name.startswith(("get_", "compute_")):
            assert READ_ONLY in m.roles, m.wire_name
        if m.wire_name in MEMORY_AND_LIFECYCLE or ("memory" in m.name and m.name.startswith("set")):
            assert READ_ONLY not in m.roles, m.wire_name
        if READ_ONLY in m.roles and m.cls in ("VM", "host", "host_metrics", "VM_metrics"):
            assert m.kind is not Kind.CUSTOM or m.wire_name in READ_ONLY_MAY, m.wire_name
    assert {"VM.set_memory_limits", "VM.start"} <= set(MODEL.messages)


def test_read_only_computes(served: tuple[XenAPIServer, Loop]) -> None:
    server, loop = served
    session = loop.login(READ_ONLY, f"{READ_ONLY}-pw")
    host = sorted(server.store.records("host"))[0]
    vm = sorted(server.store.records("VM"))[0]
    assert str(loop.call("host.compute_free_memory", session, host)).isdigit()
    assert isinstance(loop.call("host.get_memory_ledger", session, host), dict)
    assert str(loop.call("VM.maximise_memory", session, vm, str(2**30), False)).isdigit()
    assert isinstance(loop.call("event.from", session, ["vm"], "", 0.0), dict)
    loop.call("session.logout", session)


def test_sessions_end_after_the_idle_timeout_and_at_logout(tmp_path: Path) -> None:
    now = [1000.0]
    with in_process(tmp_path) as (server, loop):
        sessions = Sessions(
            server.store, server.conn, server.master, timeout=60.0, clock=lambda: now[0]
        )

        def login() -> str:
            return loop.loop.run_until_complete(sessions.login("root", "pw", "1.0", "t"))

        kept, idle = login(), login()
        for _ in range(5):  # used every 50 s: stays alive well past 60 s
            now[0] += 50.0
            assert sessions.role(kept) == "pool-admin"
        with pytest.raises(XenAPIError) as raised:
            sessions.role(idle)
        assert raised.value.description == ["SESSION_INVALID", idle]
        assert server.store.get("session", idle) is None
        assert not sessions.is_valid(idle)
        assert sessions.is_valid(kept)
        # Idle sessions nobody calls again are ended by the collector.
        forgotten = login()
        now[0] += 61.0
        fresh = login()
        tasks = Tasks(server.store, server.master, role_of=sessions.role)
        Collector(tasks, sessions, CollectorConfig()).collect()
        assert server.store.get("session", forgotten) is None
        assert server.store.get("session", kept) is None
        assert sessions.is_valid(fresh)


def test_the_default_idle_timeout_is_a_day(served: tuple[XenAPIServer, Loop]) -> None:
    from xenmem.cli.main import build_parser  # noqa: PLC0415

    args = build_parser().parse_args(["serve"])
    assert args.session_timeout == 24 * 3600


def test_failed_logins_do_not_hold_up_other_clients(tmp_path: Path) -> None:
    # A failed login answered only after an hour: no test waits that long, so the guess
    # is still waiting whenever the other client is answered, however slow the machine.
    with in_process(tmp_path, login_delay=3600.0) as (server, loop):
        session = loop.login()

        async def scenario() -> tuple[object, bool]:
            failing = asyncio.ensure_future(
                server.dispatcher.call("session.login_with_password", ["root", "wrong"])
            )
            await asyncio.sleep(0.05)
            answer = server.dispatcher.call("pool.get_all", [session])
            served = await asyncio.wait_for(answer, PATIENCE_S)
            waiting = not failing.done()
            failing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await failing
            return served, waiting

        served, guess_waiting = loop.loop.run_until_complete(scenario())
        assert served == Success(list(server.store.records("pool")))
        assert guess_waiting
