"""Black-box: xapi's finer rules through `xenmem serve` with the official SDK.

dom0 and every VM message on it; the vCPU and domain-type setters; nested virtualisation
as xapi reads it; what VM.create forces; operation names inside errors; VM.snapshot and
VM.copy (and their Async forms); the 64-bit bounds and the deliberate deviations.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import XenAPI

from tests.serving import RunningServer, start_server, vm_record
from tests.toolstack.test_control_domain import EXPECTED, vm_messages
from xenmem.xenapi.model import MODEL
from xenmem.xenapi.types import INT, Ref

README = Path(__file__).resolve().parents[2] / "README.md"
MIB = 2**20
GIB = 2**30
INT64_MAX = 2**63 - 1
ORDER = "VCPU values must satisfy: 0 < VCPUs_at_startup \u2264 VCPUs_max"
# dom0 is 1 GiB, as in the toolstack tests whose table of answers is reused here.
POOL = """
[pool]
name = "rules"

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
    state = tmp_path_factory.mktemp("rules-state")
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


def until(condition: Callable[[], bool], seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def hosts(api: Any) -> list[str]:
    by_name = {api.host.get_name_label(h): h for h in api.host.get_all()}
    return [by_name["alpha"], by_name["beta"]]


def new_vm(api: Any, name: str, **overrides: object) -> str:
    record = vm_record(name, **{"other_config": {"xenmem_boot_seconds": "0"}, **overrides})
    return str(api.VM.create(record))


def wait_task(api: Any, task: str) -> dict[str, Any]:
    until(lambda: api.task.get_status(task) != "pending")
    record: dict[str, Any] = api.task.get_record(task)
    api.task.destroy(task)
    return record


@pytest.mark.parametrize("message", vm_messages())
def test_every_vm_message_on_dom0(api: Any, message: str) -> None:
    dom0 = api.host.get_control_domain(hosts(api)[0])
    args, answer = EXPECTED[message]
    params = MODEL.messages[message].params[1:]
    wire: list[object] = []
    for param, arg in zip(params, args, strict=True):
        if param.type == Ref("host"):
            wire.append(hosts(api)[arg])
        elif param.type == INT:
            wire.append(str(arg))
        else:
            wire.append(arg)
    call = getattr(api.VM, message.removeprefix("VM."))
    expected = answer(dom0, api.VM.get_uuid(dom0))
    if expected is None:
        call(dom0, *wire)
    elif message == "VM.query_data_source":
        # Which of xcp-rrdd's "no such source" texts depends on whether the sampler has
        # made dom0's RRD yet (Datasource_missing before, Invalid_data_source after).
        details = failure(call, dom0, *wire)
        assert details[0] == "INTERNAL_ERROR"
        assert "Datasource_missing" in details[1] or "memory_internal_free" in details[1]
    else:
        assert failure(call, dom0, *wire) == expected
    assert api.VM.get_power_state(dom0) == "Running"


def test_dom0_static_changes_need_pinned_values_and_a_reboot(api: Any) -> None:
    dom0 = api.host.get_control_domain(hosts(api)[1])
    assert failure(api.VM.set_memory_limits, dom0, *(str(v) for v in (GIB, 2 * GIB, GIB, GIB))) == [
        "MEMORY_CONSTRAINT_VIOLATION_MAXPIN",
        "control domain",
    ]
    assert api.VM.get_requires_reboot(dom0) is False
    api.VM.set_memory_static_range(dom0, str(GIB), str(GIB))
    assert api.VM.get_requires_reboot(dom0) is True
    api.VM.set_memory_target_live(dom0, str(GIB // 2))
    assert api.VM.get_memory_target(dom0) == str(GIB)


def test_vcpu_setters(api: Any) -> None:
    vm = new_vm(api, "vcpus")  # 2 vCPUs
    for value in ("0", "1"):
        assert failure(api.VM.set_VCPUs_max, vm, value) == ["INVALID_VALUE", ORDER, value]
    api.VM.set_VCPUs_max(vm, "4")
    api.VM.start(vm, False, False)
    # Running, and beside nothing to wait for: set_VCPUs_at_startup takes no operation.
    api.VM.set_VCPUs_at_startup(vm, "4")
    assert api.VM.get_VCPUs_at_startup(vm) == "4"
    assert failure(api.VM.set_VCPUs_at_startup, vm, "5") == ["INVALID_VALUE", ORDER, "5"]
    assert failure(api.VM.set_VCPUs_max, vm, "8") == ["VM_BAD_POWER_STATE", vm, "halted", "running"]
    assert api.VM.get_memory_overhead(vm) == api.VM.compute_memory_overhead(vm)
    api.VM.hard_shutdown(vm)
    api.VM.destroy(vm)


def test_domain_type_setters(api: Any) -> None:
    vm = new_vm(api, "types")
    overhead = api.VM.get_memory_overhead(vm)
    assert failure(api.VM.set_domain_type, vm, "unspecified") == [
        "INVALID_VALUE",
        "domain_type",
        "unspecified",
    ]
    api.VM.set_domain_type(vm, "pvh")
    assert (api.VM.get_domain_type(vm), api.VM.get_HVM_boot_policy(vm)) == ("pvh", "")
    api.VM.set_domain_type(vm, "hvm")
    assert api.VM.get_HVM_boot_policy(vm) == "BIOS order"
    api.VM.set_HVM_boot_policy(vm, "")
    assert api.VM.get_domain_type(vm) == "pv"
    # Not recomputed, as in xapi: a PV VM would need less.
    assert api.VM.get_memory_overhead(vm) == overhead != api.VM.compute_memory_overhead(vm)
    api.VM.destroy(vm)


def test_nested_virt_comes_from_the_running_domain(api: Any) -> None:
    vm = new_vm(api, "nested", platform={"nested-virt": "true"})
    # Never run: VM_metrics.nested_virt is false, so its range may change...
    api.VM.set_memory_dynamic_range(vm, str(GIB), str(3 * GIB))
    # ...but VM.start checks the platform key itself.
    assert failure(api.VM.start, vm, False, False) == [
        "MEMORY_CONSTRAINT_VIOLATION_MAXPIN",
        "nested virt",
    ]
    api.VM.set_memory(vm, str(4 * GIB))
    api.VM.start(vm, False, False)
    assert api.VM_metrics.get_nested_virt(api.VM.get_metrics(vm)) is True
    assert failure(api.VM.set_memory_dynamic_range, vm, str(4 * GIB), str(4 * GIB)) == [
        "VM_IS_USING_NESTED_VIRT",
        vm,
    ]
    assert failure(api.VM.suspend, vm) == ["VM_IS_IMMOBILE", vm]
    snapshot = api.VM.snapshot(vm, "nested-snap")
    assert api.VM_metrics.get_nested_virt(api.VM.get_metrics(snapshot)) is True
    # Its domain gone, the VM reports false again (xenopsd's halted state).
    api.VM.hard_shutdown(vm)
    api.VM.set_memory_dynamic_range(vm, str(2 * GIB), str(4 * GIB))
    assert failure(api.VM.start, vm, False, False) == [
        "MEMORY_CONSTRAINT_VIOLATION_MAXPIN",
        "nested virt",
    ]
    for each in (snapshot, vm):
        api.VM.destroy(each)


def test_vm_create_forces_what_xapi_forces(api: Any) -> None:
    vm = new_vm(
        api,
        "forced",
        blocked_operations={"start": "no"},
        is_a_snapshot=True,
        power_state="Running",
    )
    record = api.VM.get_record(vm)
    assert record["blocked_operations"] == {}
    assert record["is_a_snapshot"] is False
    assert record["power_state"] == "Halted"
    assert len(record["other_config"]["mac_seed"]) == 36
    code, _, expected, actual = failure(api.VM.create, vm_record("s", power_state="Suspended"))
    assert (code, expected, actual) == ("VM_BAD_POWER_STATE", "halted", "suspended")
    api.VM.destroy(vm)


def test_snapshot_copy_and_their_errors(api: Any) -> None:
    vm = new_vm(api, "source", other_config={"xenmem_boot_seconds": "0", "xensource_internal": "1"})
    api.VM.set_HVM_shadow_multiplier(vm, 2.0)
    api.VM.start(vm, False, False)
    snapshot = wait_task(api, api.Async.VM.snapshot(vm, "snap"))["result"]
    snapshot = snapshot.removeprefix("<value>").removesuffix("</value>")
    record, source = api.VM.get_record(snapshot), api.VM.get_record(vm)
    for field in ("memory_overhead", "memory_static_max", "memory_dynamic_min", "VCPUs_max"):
        assert record[field] == source[field]
    assert record["HVM_shadow_multiplier"] == 2.0
    assert (record["is_a_snapshot"], record["is_a_template"]) == (True, True)
    assert (record["snapshot_of"], record["power_state"]) == (vm, "Halted")
    assert record["blocked_operations"] == {}
    assert "xensource_internal" not in record["other_config"]
    assert source["parent"] == snapshot
    assert api.VM.get_snapshots(vm) == [snapshot]
    # On a snapshot: halted-state setters name the operation as xapi renders it.
    assert failure(api.VM.set_VCPUs_max, snapshot, "4") == [
        "VM_IS_SNAPSHOT",
        snapshot,
        "(unknown operation)",
    ]
    assert failure(api.VM.set_memory_static_range, snapshot, str(GIB), str(4 * GIB)) == [
        "VM_IS_SNAPSHOT",
        snapshot,
        "changing_static_range",
    ]
    assert failure(api.VM.set_memory_target_live, snapshot, str(GIB)) == [
        "VM_BAD_POWER_STATE",
        snapshot,
        "running",
        "halted",
    ]
    api.VM.set_VCPUs_at_startup(snapshot, "1")
    copied = api.VM.copy(snapshot, "copied", "OpaqueRef:NULL")
    assert api.VM.get_is_a_template(copied) is True
    assert api.VM.get_other_config(copied)["mac_seed"] != record["other_config"]["mac_seed"]
    again = wait_task(api, api.Async.VM.copy(vm, "busy", "OpaqueRef:NULL"))
    assert again["error_info"] == ["VM_BAD_POWER_STATE", vm, "halted", "running"]
    api.VM.hard_shutdown(vm)
    for each in (copied, snapshot, vm):
        api.VM.destroy(each)


def test_clone_drops_the_template_keys(api: Any) -> None:
    template = next(ref for ref, r in api.VM.get_all_records().items() if r["is_default_template"])
    vm = api.VM.clone(template, "installed")
    other_config = api.VM.get_other_config(vm)
    assert "default_template" not in other_config
    assert other_config["base_template_name"] == api.VM.get_name_label(template)
    assert "mac_seed" in other_config
    assert api.VM.get_parent(vm) == "OpaqueRef:NULL"
    api.VM.destroy(vm)


def test_64_bit_bounds(api: Any) -> None:
    vm = new_vm(api, "bounds")
    assert failure(api.VM.set_memory_static_max, vm, str(INT64_MAX)) == [
        "INVALID_VALUE",
        "memory_static_max",
        str(INT64_MAX),
    ]
    assert failure(api.VM.set_HVM_shadow_multiplier, vm, 1e300) == [
        "INVALID_VALUE",
        "multiplier",
        "1e+300",
    ]
    assert failure(api.VM.set_VCPUs_max, vm, str(2**62)) == [
        "INVALID_VALUE",
        "VCPUs_max",
        str(2**62),
    ]
    assert failure(api.VM.create, vm_record("huge", memory_static_max=str(INT64_MAX))) == [
        "INVALID_VALUE",
        "memory_static_max",
        str(INT64_MAX),
    ]
    assert failure(api.VM.maximise_memory, vm, "-1", False) == ["INVALID_VALUE", "total", "-1"]
    for record in api.VM.get_all_records().values():
        assert -(2**63) <= int(record["memory_overhead"]) <= INT64_MAX
    api.VM.destroy(vm)


def test_the_deviations_the_readme_lists(api: Any) -> None:
    """NaN and infinite multipliers are refused before the message runs; the README
    quotes this answer."""
    vm = new_vm(api, "nan")
    answer = failure(api.VM.set_HVM_shadow_multiplier, vm, math.nan)
    assert answer == ["INTERNAL_ERROR", "value: expected a finite float, got nan"]
    assert f'`INTERNAL_ERROR ["{answer[1]}"]`' in README.read_text(encoding="utf-8")
    assert failure(api.VM.set_HVM_shadow_multiplier, vm, math.inf)[0] == "INTERNAL_ERROR"
    assert api.VM.get_HVM_shadow_multiplier(vm) == 1.0
    # get_cooperative tells the truth: a halted VM does not co-operate.
    assert api.VM.get_cooperative(vm) is False
    api.VM.destroy(vm)
