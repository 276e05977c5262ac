"""Black-box: every memory message through `xenmem serve` with the official SDK.

The server simulates a pool of two 16 GiB hosts at 100 simulated seconds per real second,
so guests boot and balloon in a fraction of a second.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import XenAPI

from tests.serving import RunningServer, start_server, until, vm_record
from xenmem.toolstack.ledger import PARTS

MIB = 2**20
GIB = 2**30
POOL = """
[pool]
name = "memory"

[[host]]
name = "alpha"
memory = "16GiB"
cpus = 8
dom0_memory = "1GiB"
xen_memory = "512MiB"

[[host]]
name = "beta"
memory = "16GiB"
cpus = 8
dom0_memory = "1GiB"
xen_memory = "512MiB"
"""


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    state = tmp_path_factory.mktemp("memory-state")
    pool_file = state / "pool.toml"
    pool_file.write_text(POOL)
    server = start_server(state / "db", "--pool", str(pool_file))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def api(running: RunningServer) -> Iterator[Any]:
    session = running.session()
    yield session.xenapi
    session.xenapi.session.logout()


def failure(call: Callable[..., object], *args: object) -> list[str]:
    with pytest.raises(XenAPI.Failure) as caught:
        call(*args)
    return list(caught.value.details)


def hosts(api: Any) -> dict[str, str]:
    return {api.host.get_name_label(h): h for h in api.host.get_all()}


def new_vm(api: Any, name: str, **overrides: object) -> str:
    """A halted HVM VM whose guest's balloon driver appears at once."""
    record = vm_record(name, **{"other_config": {"xenmem_boot_seconds": "0"}, **overrides})
    return str(api.VM.create(record))


def expected_free(api: Any, host: str) -> int:
    """§4.2 computed by the client from the records alone."""
    record = api.host.get_record(host)
    free = int(api.host_metrics.get_memory_total(record["metrics"])) - int(
        record["memory_overhead"]
    )
    for vm in api.VM.get_all_records().values():
        for placement in ("resident_on", "scheduled_to_be_resident_on"):
            if vm[placement] == host:
                free -= int(vm["memory_dynamic_min"]) + int(vm["memory_overhead"])
    return max(0, free)


def test_compute_messages_give_the_spec_numbers(api: Any) -> None:
    vm = new_vm(api, "calc")
    assert api.VM.compute_memory_overhead(vm) == "38797312"
    assert api.VM.maximise_memory(vm, str(4 * GIB), False) == "4256169984"
    assert api.VM.get_memory_overhead(vm) == "38797312"
    for host in hosts(api).values():
        # Xen + crash kernel (512 MiB) + squeezed's 72 MiB reserve.
        assert api.host.compute_memory_overhead(host) == str(584 * MIB)
        assert int(api.host.compute_free_memory(host)) == expected_free(api, host)
    api.VM.destroy(vm)


def test_setters_and_their_errors(api: Any) -> None:
    vm = new_vm(api, "setters")
    api.VM.set_memory_limits(vm, str(GIB), str(8 * GIB), str(2 * GIB), str(3 * GIB))
    record = api.VM.get_record(vm)
    assert [record[f"memory_{k}"] for k in ("static_min", "dynamic_min", "target")] == [
        str(GIB),
        str(2 * GIB),
        str(2 * GIB),
    ]
    assert record["memory_overhead"] == api.VM.compute_memory_overhead(vm)
    assert failure(
        api.VM.set_memory_limits, vm, str(4 * GIB), str(2 * GIB), str(GIB), str(GIB)
    ) == ["MEMORY_CONSTRAINT_VIOLATION_ORDER"]
    assert failure(api.VM.set_memory_dynamic_range, vm, str(3 * GIB), str(2 * GIB)) == [
        "MEMORY_CONSTRAINT_VIOLATION_ORDER"
    ]
    api.VM.set_memory_static_max(vm, str(6 * GIB))
    api.VM.set_memory_dynamic_max(vm, str(5 * GIB))
    api.VM.set_memory_dynamic_min(vm, str(GIB))
    api.VM.set_memory_static_min(vm, str(512 * MIB))
    api.VM.set_memory_static_range(vm, str(256 * MIB), str(6 * GIB))
    api.VM.set_memory(vm, str(3 * GIB))
    assert api.VM.get_memory_static_max(vm) == str(3 * GIB)
    assert failure(api.VM.set_HVM_shadow_multiplier, vm, 0.5) == [
        "INVALID_VALUE",
        "multiplier",
        "0.5",
    ]
    api.VM.set_HVM_shadow_multiplier(vm, 2.0)
    api.VM.set_VCPUs_max(vm, "4")
    assert api.VM.get_memory_overhead(vm) == api.VM.compute_memory_overhead(vm)
    assert failure(api.VM.set_memory_target_live, vm, str(GIB)) == [
        "VM_BAD_POWER_STATE",
        vm,
        "running",
        "halted",
    ]
    assert failure(api.VM.wait_memory_target_live, vm) == [
        "VM_BAD_POWER_STATE",
        vm,
        "running",
        "halted",
    ]
    assert api.VM.get_cooperative(vm) is False
    api.VM.destroy(vm)


def test_start_balloon_wait_and_cooperate(api: Any) -> None:
    vm = new_vm(api, "live")
    host = api.VM.get_resident_on(vm)
    api.VM.start(vm, False, False)
    host = api.VM.get_resident_on(vm)
    assert host in hosts(api).values()
    assert api.VM.get_power_state(vm) == "Running"
    assert int(api.host.compute_free_memory(host)) == expected_free(api, host)
    assert failure(api.VM.set_memory_static_max, vm, str(8 * GIB)) == [
        "VM_BAD_POWER_STATE",
        vm,
        "halted",
        "running",
    ]
    until(lambda: api.VM.get_cooperative(vm) is True)
    api.VM.set_memory_dynamic_range(vm, str(3 * GIB), str(3 * GIB))
    until(lambda: api.VM.get_memory_target(vm) == str(3 * GIB))
    api.VM.wait_memory_target_live(vm)
    actual = int(api.VM_metrics.get_memory_actual(api.VM.get_metrics(vm)))
    assert abs(actual - 3 * GIB) <= MIB
    api.VM.set_memory_target_live(vm, str(3 * GIB))
    assert failure(api.VM.set_memory_target_live, vm, str(GIB)) == [
        "MEMORY_CONSTRAINT_VIOLATION_ORDER"
    ]
    ledger = {k: int(v) for k, v in api.host.get_memory_ledger(host).items()}
    assert ledger["unaccounted"] == 0
    parts = PARTS
    guests = [
        v for k, v in ledger.items() if k.startswith("vm:") and k.endswith((":ram", ":overhead"))
    ]
    assert sum(ledger[p] for p in parts) + sum(guests) == ledger["total"] == 16 * GIB
    assert ledger[f"vm:{vm}:dynamic_min"] == 3 * GIB
    api.VM.clean_shutdown(vm)
    assert api.VM.get_power_state(vm) == "Halted"
    api.VM.destroy(vm)


def test_async_start_suspend_resume_migrate(running: RunningServer, api: Any) -> None:
    by_name = hosts(api)
    vm = new_vm(api, "mover")
    task = api.Async.VM.start_on(vm, by_name["alpha"], False, False)
    until(lambda: api.task.get_status(task) != "pending")
    assert api.task.get_status(task) == "success"
    api.task.destroy(task)
    assert api.VM.get_resident_on(vm) == by_name["alpha"]
    api.VM.assert_can_boot_here(vm, by_name["beta"])
    api.VM.pool_migrate(vm, by_name["beta"], {"live": "true"})
    assert api.VM.get_resident_on(vm) == by_name["beta"]
    api.VM.suspend(vm)
    assert api.VM.get_power_state(vm) == "Suspended"
    api.VM.resume_on(vm, by_name["alpha"], False, False)
    assert (api.VM.get_power_state(vm), api.VM.get_resident_on(vm)) == ("Running", by_name["alpha"])
    api.VM.pause(vm)
    api.VM.unpause(vm)
    api.VM.hard_shutdown(vm)
    api.VM.destroy(vm)


def test_a_full_host_refuses_with_numbers_and_the_ledger(api: Any) -> None:
    alpha = hosts(api)["alpha"]
    big = new_vm(
        api,
        "big",
        memory_dynamic_min=str(13 * GIB),
        memory_dynamic_max=str(13 * GIB),
        memory_static_max=str(13 * GIB),
    )
    api.VM.start_on(big, alpha, False, False)
    small = new_vm(api, "small")
    available = api.host.compute_free_memory(alpha)
    assert failure(api.VM.start_on, small, alpha, False, False) == [
        "HOST_NOT_ENOUGH_FREE_MEMORY",
        str((2048 + 37) * MIB),
        available,
    ]
    assert api.VM.get_power_state(small) == "Halted"
    api.VM.hard_shutdown(big)
    for vm in (big, small):
        api.VM.destroy(vm)


def test_stuck_guests_are_named(api: Any) -> None:
    beta = hosts(api)["beta"]
    stuck = new_vm(
        api,
        "stuck",
        memory_dynamic_min=str(GIB),
        memory_dynamic_max=str(13 * GIB),
        memory_static_max=str(13 * GIB),
        other_config={"xenmem_balloon": "stuck", "xenmem_boot_seconds": "0"},
    )
    api.VM.start_on(stuck, beta, False, False)
    newcomer = new_vm(
        api,
        "newcomer",
        memory_dynamic_min=str(4 * GIB),
        memory_dynamic_max=str(4 * GIB),
        memory_static_max=str(4 * GIB),
    )
    task = api.Async.VM.start_on(newcomer, beta, False, False)
    until(lambda: api.task.get_status(task) != "pending")
    record = api.task.get_record(task)
    assert record["status"] == "failure"
    assert record["error_info"] == ["VMS_FAILED_TO_COOPERATE", stuck]
    assert "memory_ledger" in record["other_config"]
    assert api.VM.get_cooperative(stuck) is False
    api.task.destroy(task)
    api.VM.hard_shutdown(stuck)
    for vm in (stuck, newcomer):
        api.VM.destroy(vm)


def test_dmc_off_pool(tmp_path: Path) -> None:
    pool_file = tmp_path / "pool.toml"
    pool_file.write_text(POOL.replace('name = "memory"', 'name = "memory"\ndmc = false'))
    server = start_server(tmp_path / "db", "--pool", str(pool_file))
    try:
        api = server.session().xenapi
        vm = new_vm(api, "pinned")
        assert failure(api.VM.set_memory_dynamic_range, vm, str(GIB), str(2 * GIB)) == [
            "MEMORY_CONSTRAINT_VIOLATION_MAXPIN",
            "DMC disabled",
        ]
        pool = api.pool.get_all()[0]
        assert api.pool.get_restrictions(pool)["restrict_dmc"] == "true"
    finally:
        server.stop()


def test_cancelled_starts_leave_xen_and_the_records_agreeing(api: Any) -> None:
    """Whenever task.cancel reaches an Async start (waiting for memory, building, or
    dropping its reservation), the VM ends running with its domain or halted without."""
    alpha = hosts(api)["alpha"]
    big = new_vm(api, "roomy", memory_static_max=str(8 * GIB), memory_dynamic_max=str(8 * GIB))
    api.VM.start_on(big, alpha, False, False)
    # It fits only once the big guest has given back some of its 8 GiB.
    seven = str(7 * GIB)
    vm = new_vm(
        api,
        "cancelled",
        memory_static_max=seven,
        memory_dynamic_max=seven,
        memory_dynamic_min=seven,
    )

    def big_actual() -> int:
        return int(api.VM_metrics.get_memory_actual(api.VM.get_metrics(big)))

    def settled(task: str) -> bool:
        return api.task.get_status(task) not in ("pending", "cancelling")

    for delay in (0.0, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1):
        until(lambda: big_actual() > 8 * GIB - 8 * MIB)  # it holds its whole range again
        task = api.Async.VM.start_on(vm, alpha, False, False)
        time.sleep(delay)
        try:
            api.task.cancel(task)
        except XenAPI.Failure as caught:
            assert caught.details[0] == "OPERATION_NOT_ALLOWED"  # it had finished
        until(functools.partial(settled, task))
        until(lambda: api.VM.get_current_operations(vm) == {})
        ledger = {k: int(v) for k, v in api.host.get_memory_ledger(alpha).items()}
        assert ledger["unaccounted"] == ledger["other_domains"] == 0, (delay, ledger)
        running = api.VM.get_power_state(vm) == "Running"
        assert (api.VM.get_resident_on(vm) == alpha) == running
        assert (f"vm:{vm}:ram" in ledger) == running
        if running:
            api.VM.hard_shutdown(vm)
        api.task.destroy(task)
    api.VM.destroy(vm)
    api.VM.hard_shutdown(big)
    api.VM.destroy(big)


def test_clone_resume_and_live_shadow(api: Any) -> None:
    template = next(
        vm for vm, r in api.VM.get_all_records().items() if r["name_label"] == "Debian Bookworm 12"
    )
    assert failure(api.VM.start, template, False, False) == ["VM_IS_TEMPLATE", template, "start"]
    vm = api.VM.clone(template, "from-template")
    api.VM.set_is_a_template(vm, False)
    api.VM.set_other_config(vm, {"xenmem_boot_seconds": "0"})
    assert api.VM.get_memory_overhead(vm) == api.VM.get_memory_overhead(template)
    api.VM.start(vm, False, False)
    assert failure(api.VM.set_shadow_multiplier_live, vm, 0.5) == [
        "INVALID_VALUE",
        "multiplier",
        "0.5",
    ]
    before = int(api.VM.get_memory_overhead(vm))
    api.VM.set_shadow_multiplier_live(vm, 2.0)
    assert api.VM.get_HVM_shadow_multiplier(vm) == 2.0
    assert int(api.VM.get_memory_overhead(vm)) > before
    api.VM.suspend(vm)
    api.VM.resume(vm, False, False)
    assert api.VM.get_power_state(vm) == "Running"
    api.VM.hard_shutdown(vm)
    api.VM.destroy(vm)
