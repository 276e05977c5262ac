"""Black-box: a call on a VM busy with another operation waits for it, as xapi's do.

The operation held here is `wait_memory_target_live` on a guest whose balloon driver is
stuck: it lasts until it times out (256 simulated s) or its task is cancelled. The guests
are set up on a fast clock, then the server goes on at HELD_TIME_SCALE, where that timeout
outlasts any test however slow the machine; the waiting calls are woken as soon as the
operations they wait for end.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import XenAPI

from tests.serving import (
    HELD_TIME_SCALE,
    PATIENCE_S,
    RunningServer,
    start_again,
    start_server,
    until,
    vm_record,
)
from xenmem.cli.main import main

MIB = 2**20
GIB = 2**30
# One guest per test, each on its own host, so that one test's rebalancing leaves the
# others' guests alone.
GUESTS = ("held", "cancelled", "crowded")
HOST = """
[[host]]
name = "{name}"
memory = "16GiB"
cpus = 8
dom0_memory = "1GiB"
xen_memory = "512MiB"
"""
POOL = '[pool]\nname = "waiting"\n' + "".join(HOST.format(name=name) for name in GUESTS)


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    state = tmp_path_factory.mktemp("waiting-state")
    pool_file = state / "pool.toml"
    pool_file.write_text(POOL)
    first = start_server(state / "db", "--pool", str(pool_file))
    try:
        api = first.session().xenapi
        hosts = {api.host.get_name_label(host): host for host in api.host.get_all()}
        for name in GUESTS:
            stuck_guest(api, name, hosts[name])
    finally:
        first.stop()
    server = start_again(first, time_scale=HELD_TIME_SCALE)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def api(running: RunningServer) -> Iterator[Any]:
    session = running.session()
    yield session.xenapi
    session.xenapi.session.logout()


def stuck_guest(api: Any, name: str, host: str) -> None:
    """A guest at 4 GiB on `host` whose stuck balloon driver never takes it to its 2 GiB."""
    record = vm_record(name, other_config={"xenmem_balloon": "stuck", "xenmem_boot_seconds": "0"})
    vm = str(api.VM.create(record))
    api.VM.start_on(vm, host, False, False)
    until(
        lambda: (
            api.VM_metrics.get_other_config(api.VM.get_metrics(vm)).get("balloon_health")
            == "cooperative"
        )
    )
    # Pinned below what the guest holds, in its record: the target stays out of its reach
    # whatever rebalances it (set_memory_target_live's hold would not survive a restart).
    api.VM.set_memory_dynamic_range(vm, str(2 * GIB), str(2 * GIB))


def busy_vm(api: Any, name: str) -> tuple[str, str]:
    """The stuck guest `name`, held by an Async wait_memory_target_live that cannot end
    by itself while the test runs; returns the VM and the holding task."""
    (vm,) = api.VM.get_by_name_label(name)
    task = api.Async.VM.wait_memory_target_live(vm)
    until(lambda: api.VM.get_current_operations(vm) == {task: "awaiting_memory_live"})
    return vm, task


def release(api: Any, vm: str, task: str) -> None:
    api.task.cancel(task)
    until(lambda: api.task.get_status(task) == "cancelled")
    api.task.destroy(task)


def clean_up(api: Any, vm: str) -> None:
    until(lambda: api.VM.get_current_operations(vm) == {})
    api.VM.hard_shutdown(vm)
    api.VM.destroy(vm)


def test_a_call_waits_for_the_operation_in_progress_and_then_runs(
    running: RunningServer, api: Any
) -> None:
    vm, holder = busy_vm(api, "held")
    other = running.session().xenapi
    outcome: list[object] = []

    def resize() -> None:
        try:
            outcome.append(other.VM.set_memory_dynamic_range(vm, str(GIB), str(4 * GIB)))
        except XenAPI.Failure as failure:
            outcome.append(list(failure.details))

    waiter = threading.Thread(target=resize)
    waiter.start()
    # The waiting call blocks no one else: other calls on the VM and the pool go on.
    until(lambda: api.VM.get_memory_dynamic_max(vm) == str(2 * GIB) and waiter.is_alive())
    assert api.VM.get_current_operations(vm) == {holder: "awaiting_memory_live"}
    assert api.VM.get_cooperative(vm) is False
    assert outcome == []
    release(api, vm, holder)
    waiter.join(timeout=PATIENCE_S)
    assert outcome == [""]
    assert api.VM.get_memory_dynamic_min(vm) == str(GIB)
    other.session.logout()
    clean_up(api, vm)


def test_cancelling_a_waiting_call_ends_its_task_cancelled(api: Any) -> None:
    vm, holder = busy_vm(api, "cancelled")
    waiting = api.Async.VM.set_memory_dynamic_range(vm, str(GIB), str(3 * GIB))
    until(lambda: api.task.get_status(waiting) == "pending")
    api.task.cancel(waiting)
    until(lambda: api.task.get_status(waiting) == "cancelled")
    assert api.task.get_error_info(waiting) == ["TASK_CANCELLED", waiting]
    # It never ran: the holder is still the only operation, the range is unchanged.
    assert api.VM.get_current_operations(vm) == {holder: "awaiting_memory_live"}
    assert api.VM.get_memory_dynamic_min(vm) == str(2 * GIB)
    api.task.destroy(waiting)
    release(api, vm, holder)
    clean_up(api, vm)


def test_over_a_hundred_waiting_calls_get_too_many_pending_tasks(api: Any) -> None:
    """xapi lets 101 calls wait at once; the next gets TOO_MANY_PENDING_TASKS []."""
    vm, holder = busy_vm(api, "crowded")
    tasks = [api.Async.VM.set_memory_target_live(vm, str(2 * GIB)) for _ in range(103)]

    def statuses() -> dict[str, str]:
        records = api.task.get_all_records()
        return {t: records[t]["status"] for t in tasks}

    until(lambda: list(statuses().values()).count("failure") == 2)
    now = statuses()
    refused = [t for t in tasks if now[t] == "failure"]
    for task in refused:
        assert api.task.get_error_info(task) == ["TOO_MANY_PENDING_TASKS"]
    assert {now[t] for t in tasks if t not in refused} == {"pending"}
    # Destroying a pending task cancels it: the calls stop waiting.
    for task in tasks:
        api.task.destroy(task)
    assert api.VM.get_current_operations(vm) == {holder: "awaiting_memory_live"}
    release(api, vm, holder)
    clean_up(api, vm)


@pytest.mark.parametrize("args", [("--operation-wait", "-1"), ("--operation-retry-delay", "5,1")])
def test_serve_refuses_a_bad_wait_setting(
    args: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["serve", *args])
    assert exited.value.code == 2
    assert "expecting" in capsys.readouterr().err
