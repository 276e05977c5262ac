"""Tasks belong to their session's user, over the wire with the SDK: another user may
cancel, destroy or change one only with task.destroy/any (pool-operator, pool-admin)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import XenAPI

from tests.serving import (
    HELD_TIME_SCALE,
    RunningServer,
    add_user,
    start_again,
    start_server,
    until,
    vm_record,
)

GIB = 2**30
NOT_YOURS = [
    "RBAC_PERMISSION_DENIED",
    "task.destroy/any",
    "No permission in user session. (Roles with this permission: pool-admin, pool-operator)",
]
USERS = {"ro": "read-only", "ro2": "read-only", "va": "vm-admin", "po": "pool-operator"}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """The users, and a guest whose memory target is out of its reach; then the server
    goes on at HELD_TIME_SCALE, where a wait for that target cannot time out while a test
    runs, however slow the machine."""
    first = start_server(tmp_path_factory.mktemp("tasks") / "state")
    try:
        for name, role in USERS.items():
            add_user(first.state_dir, name, role, f"{name}-pw")
        _stuck_guest(api(first))
    finally:
        first.stop()
    running = start_again(first, time_scale=HELD_TIME_SCALE)
    yield running
    running.stop()


def _stuck_guest(root: Any) -> None:
    """A guest at 4 GiB whose stuck balloon driver never takes it to its 2 GiB."""
    record = vm_record(
        "stuck", other_config={"xenmem_balloon": "stuck", "xenmem_boot_seconds": "0"}
    )
    vm = root.VM.create(record)
    root.VM.start_on(vm, root.host.get_all()[0], False, False)
    metrics = root.VM.get_metrics(vm)
    until(lambda: root.VM_metrics.get_other_config(metrics).get("balloon_health") == "cooperative")
    # Pinned in its record, so that no rebalance brings the target back within reach.
    root.VM.set_memory_dynamic_range(vm, str(2 * GIB), str(2 * GIB))


def api(server: RunningServer, user: str = "root") -> Any:
    session = server.session() if user == "root" else server.session(user, f"{user}-pw")
    return session.xenapi


def failure(call: Callable[..., object], *args: object) -> list[str]:
    with pytest.raises(XenAPI.Failure) as failed:
        call(*args)
    details: list[str] = failed.value.details
    return details


def finished_task(user_api: Any) -> str:
    host = user_api.host.get_all()[0]
    task: str = user_api.Async.host.compute_free_memory(host)
    until(lambda: user_api.task.get_status(task) == "success")
    return task


def test_another_users_task_is_not_yours_without_destroy_any(served: RunningServer) -> None:
    roots = finished_task(api(served))
    for user in ("ro", "va"):
        other = api(served, user)
        assert failure(other.task.destroy, roots) == NOT_YOURS
        assert failure(other.task.cancel, roots) == NOT_YOURS
        assert failure(other.task.add_to_other_config, roots, "k", "v") == NOT_YOURS
        assert failure(other.task.set_name_label, roots, "mine now") == NOT_YOURS
    root = api(served)
    assert root.task.get_other_config(roots) == {}
    assert root.task.get_status(roots) == "success"
    # A pool-operator holds task.destroy/any.
    api(served, "po").task.destroy(roots)
    assert failure(root.task.get_status, roots)[0] == "HANDLE_INVALID"


def test_a_users_tasks_are_theirs_in_every_session(served: RunningServer) -> None:
    task = finished_task(api(served, "ro"))
    assert failure(api(served, "ro2").task.destroy, task) == NOT_YOURS
    again = api(served, "ro")  # another session of the same user
    again.task.add_to_other_config(task, "note", "seen")
    assert again.task.get_other_config(task) == {"note": "seen"}
    assert failure(again.task.cancel, task)[0] == "OPERATION_NOT_ALLOWED"  # finished
    again.task.destroy(task)


def test_a_task_whose_session_ended_belongs_to_nobody(served: RunningServer) -> None:
    # xapi compares the users of the two sessions; with the task's session gone there is
    # nothing to compare, and only task.destroy/any may act.
    owner = api(served, "ro")
    task = finished_task(owner)
    owner.session.logout()
    assert failure(api(served, "ro").task.destroy, task) == NOT_YOURS
    api(served).task.destroy(task)


def test_only_the_owner_cancels_a_pending_task(served: RunningServer) -> None:
    root = api(served)
    (vm,) = root.VM.get_by_name_label("stuck")
    owner = api(served, "ro")
    task = owner.Async.VM.wait_memory_target_live(vm)  # the guest never gets there
    try:
        for user in ("ro2", "va"):
            assert failure(api(served, user).task.cancel, task) == NOT_YOURS
        assert owner.task.get_status(task) == "pending"
        api(served, "ro").task.cancel(task)
        until(lambda: owner.task.get_status(task) == "cancelled")
    finally:
        root.VM.hard_shutdown(vm)
        root.VM.destroy(vm)
