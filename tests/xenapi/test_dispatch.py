"""Dispatch in process: xapi's order of checks, counts, RBAC, Async and tasks (§4, §5)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.in_process import open_in_process
from tests.serving import PATIENCE_S
from xenmem.db.users import set_user
from xenmem.errors import (
    HANDLE_INVALID,
    HOST_DISABLED,
    MEMORY_CONSTRAINT_VIOLATION_ORDER,
    UUID_INVALID,
)
from xenmem.xenapi.app import XenAPIServer
from xenmem.xenapi.dispatch import UNDECLARED, Dispatcher, Failure, Raw, Success
from xenmem.xenapi.model import MODEL

DEAD = "OpaqueRef:dead0000-0000-4000-8000-000000000000"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[XenAPIServer]:
    opened = asyncio.run(open_in_process(tmp_path))
    yield opened
    opened.conn.close()


def call(server: XenAPIServer, method: str, *params: object) -> object:
    reply = asyncio.run(server.dispatcher.call(method, list(params)))
    if isinstance(reply, Failure):
        return reply.description
    assert isinstance(reply, Success | Raw)
    return reply.value


def error_code(server: XenAPIServer, method: str, *params: object) -> object:
    """The code of the error the call fails with."""
    description = call(server, method, *params)
    assert isinstance(description, list), description
    return description[0]


def login(server: XenAPIServer, user: str = "root", password: str = "pw") -> str:
    session = call(server, "session.login_with_password", user, password)
    assert isinstance(session, str)
    return session


def test_login_takes_two_to_four_params_and_ignores_extras(server: XenAPIServer) -> None:
    assert call(server, "session.login_with_password", "root") == [
        "MESSAGE_PARAMETER_COUNT_MISMATCH",
        "session.login_with_password",
        "2",
        "1",
    ]
    for extra in ([], ["1.1"], ["1.1", "me"], ["1.1", "me", "ignored"]):
        assert str(call(server, "session.login_with_password", "root", "pw", *extra)).startswith(
            "OpaqueRef:"
        )


def test_count_is_checked_before_decoding_and_session(server: XenAPIServer) -> None:
    assert call(server, "VM.get_record", DEAD) == [
        "MESSAGE_PARAMETER_COUNT_MISMATCH",
        "VM.get_record",
        "1",
        "0",
    ]
    assert call(server, "VM.get_record", DEAD, "a", "b") == [
        "MESSAGE_PARAMETER_COUNT_MISMATCH",
        "VM.get_record",
        "1",
        "2",
    ]
    # Decoding comes before the session check.
    assert error_code(server, "VM.set_user_version", DEAD, "OpaqueRef:x", "NaN") == "INTERNAL_ERROR"
    assert call(server, "VM.set_user_version", DEAD, "OpaqueRef:x", "1") == [
        "SESSION_INVALID",
        DEAD,
    ]
    assert call(server, "VM.get_all", 42) == ["SESSION_INVALID", "42"]


def test_unknown_methods(server: XenAPIServer) -> None:
    session = login(server)
    assert call(server, "VM.frobnicate", session) == ["MESSAGE_METHOD_UNKNOWN", "VM.frobnicate"]
    assert call(server, "VM.frobnicate", DEAD) == ["SESSION_INVALID", DEAD]
    assert call(server, "nonsense") == ["MESSAGE_METHOD_UNKNOWN", "nonsense"]
    # The alias is synchronous only (§5).
    assert call(server, "Async.VM_compute_memory_overhead", session, "x") == [
        "MESSAGE_METHOD_UNKNOWN",
        "Async.VM_compute_memory_overhead",
    ]
    vms = call(server, "VM_get_all", session)
    assert isinstance(vms, list)
    assert sorted(vms) == sorted(server.store.records("VM"))  # two dom0s, four templates


def test_rbac_is_checked_after_the_session(server: XenAPIServer) -> None:
    set_user(server.conn, "op", "vm-operator", "op-pw")
    session = login(server, "op", "op-pw")
    assert call(server, "VM.create", session, {}) == [
        "INTERNAL_ERROR",
        "missing field memory_static_max in VM record",
    ]
    record = {
        f"memory_{k}": 1 for k in ("static_min", "static_max", "dynamic_min", "dynamic_max")
    } | {"VCPUs_max": 1, "VCPUs_at_startup": 1}
    assert call(server, "VM.create", session, record) == [
        "RBAC_PERMISSION_DENIED",
        "vm.create",
        "No permission in user session",
    ]
    assert call(server, "Async.VM.create", session, record) == [
        "RBAC_PERMISSION_DENIED",
        "vm.create",
        "No permission in user session",
    ]
    assert isinstance(call(server, "VM.get_all_records", session), dict)


async def settled(dispatcher: Dispatcher, session: str, task: str) -> Success:
    """The task's record once it is no longer pending (a hung run fails after PATIENCE_S)."""

    async def poll() -> Success:
        while True:
            reply = await dispatcher.call("task.get_record", [session, task])
            assert isinstance(reply, Success) and isinstance(reply.value, dict)
            if reply.value["status"] != "pending":
                return reply
            await asyncio.sleep(0.01)

    return await asyncio.wait_for(poll(), PATIENCE_S)


def test_async_runs_in_a_task_and_cancel_works(server: XenAPIServer) -> None:
    session = login(server)
    host = server.master

    async def scenario() -> tuple[object, object, object]:
        reply = await server.dispatcher.call("Async.host.compute_free_memory", [session, host])
        assert isinstance(reply, Success) and isinstance(reply.value, str)
        task = reply.value
        pending = await server.dispatcher.call("task.get_status", [session, task])
        done = await settled(server.dispatcher, session, task)
        return pending, done, task

    pending, done, task = asyncio.run(scenario())
    assert pending == Success("pending")
    assert isinstance(done, Success)
    record = done.value
    assert isinstance(record, dict)
    free = call(server, "host.compute_free_memory", session, host)
    assert record["status"] == "success", record["error_info"]
    assert record["result"] == f"<value>{free}</value>"
    assert record["allowed_operations"] == ["destroy"]
    assert error_code(server, "task.cancel", session, task) == "OPERATION_NOT_ALLOWED"


def test_cancel_a_pending_task(server: XenAPIServer) -> None:
    session = login(server)
    started = asyncio.Event()

    async def slow(ctx: object, vm: str) -> int:
        started.set()
        await asyncio.Event().wait()  # never set: only the cancel ends this body
        return 0

    bodies = dict(server.dispatcher._bodies)  # the same server, one body made slow
    bodies["VM.compute_memory_overhead"] = slow
    dispatcher = Dispatcher(
        model=MODEL,
        store=server.store,
        sessions=server.dispatcher._sessions,
        tasks=server.dispatcher._tasks,
        bodies=bodies,
    )

    async def scenario() -> tuple[object, object]:
        reply = await dispatcher.call("Async.VM.compute_memory_overhead", [session, "x"])
        assert isinstance(reply, Success) and isinstance(reply.value, str)
        await started.wait()
        cancelled = await dispatcher.call("task.cancel", [session, reply.value])
        return cancelled, await settled(dispatcher, session, reply.value)

    cancelled, record = asyncio.run(scenario())
    assert cancelled == Success("")
    assert isinstance(record, Success)
    assert isinstance(record.value, dict)
    assert record.value["status"] == "cancelled"
    assert record.value["error_info"][0] == "TASK_CANCELLED"


def test_list_methods_is_raw(server: XenAPIServer) -> None:
    reply = asyncio.run(server.dispatcher.call("system.listMethods", []))
    assert isinstance(reply, Raw)
    assert isinstance(reply.value, list)
    assert "VM.create" in reply.value


def test_logout_ends_a_blocked_event_from(server: XenAPIServer) -> None:
    session = login(server)
    token = call(server, "event.from", session, ["pool"], "", 0.0)
    assert isinstance(token, dict)

    async def scenario() -> object:
        blocked = asyncio.ensure_future(
            server.dispatcher.call("event.from", [session, ["pool"], token["token"], 3600.0])
        )
        await asyncio.sleep(0.05)
        assert not blocked.done()  # nothing changes and no test lasts an hour
        await server.dispatcher.call("session.logout", [session])
        return await asyncio.wait_for(blocked, PATIENCE_S)

    assert asyncio.run(scenario()) == Failure(["SESSION_INVALID", session])


def test_a_body_raising_an_undeclared_error_is_reported(
    server: XenAPIServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    session = login(server)
    vms = call(server, "VM.get_all", session)
    assert isinstance(vms, list)
    vm = str(vms[0])

    def undeclared(ctx: object, vm: str) -> int:
        raise HOST_DISABLED(vm)

    monkeypatch.setitem(server.bodies, "VM.compute_memory_overhead", undeclared)
    with caplog.at_level(logging.ERROR, logger="xenmem"):
        assert call(server, "VM.compute_memory_overhead", session, vm) == ["HOST_DISABLED", vm]
    assert [r.getMessage() for r in caplog.records] == [
        f"VM.compute_memory_overhead raised HOST_DISABLED: [{vm!r}], {UNDECLARED}"
    ]


def test_declared_errors_and_handle_invalid_are_the_bodys_to_raise() -> None:
    message = MODEL.messages["VM.set_memory_dynamic_range"]
    assert message.declares(MEMORY_CONSTRAINT_VIOLATION_ORDER())
    assert message.declares(HANDLE_INVALID("VM", DEAD))
    assert not message.declares(HOST_DISABLED(DEAD))
    assert MODEL.messages["VM.get_by_uuid"].declares(UUID_INVALID("VM", "x"))
