"""The vCPU setters and the domain type setters, as xapi_vm.ml has them."""

from __future__ import annotations

import pytest

from tests.toolstack.harness import Pool, small_pool
from xenmem.memory import compute_memory_overhead
from xenmem.toolstack.records import memory_of

ORDER = "VCPU values must satisfy: 0 < VCPUs_at_startup \u2264 VCPUs_max"


@pytest.fixture
def pool() -> Pool:
    return Pool(small_pool())


def computed_overhead(pool: Pool, vm: str) -> int:
    return compute_memory_overhead(memory_of(pool.record("VM", vm)))


def test_set_vcpus_max_needs_at_least_one_and_at_least_those_at_startup(pool: Pool) -> None:
    vm = pool.vm()  # 2 vCPUs at startup
    for value in (0, -3, 1):
        assert pool.error("VM.set_VCPUs_max", vm, value) == ["INVALID_VALUE", ORDER, str(value)]
    pool.call("VM.set_VCPUs_max", vm, 64)
    assert pool.record("VM", vm)["VCPUs_max"] == 64
    assert pool.record("VM", vm)["memory_overhead"] == computed_overhead(pool, vm)


def test_set_vcpus_max_on_a_running_control_domain_waits_for_its_reboot(pool: Pool) -> None:
    """A control domain other than dom0 (a driver domain) may change it while running."""
    vm = pool.vm()
    with pool.store.transaction() as tx:
        tx.update("VM", vm, {"is_control_domain": True, "power_state": "Running"})
    pool.call("VM.set_VCPUs_max", vm, 4)
    assert pool.record("VM", vm)["requires_reboot"] is True
    assert pool.record("VM", vm)["memory_overhead"] == computed_overhead(pool, vm)


def test_set_vcpus_at_startup_in_any_state_beside_any_operation(pool: Pool) -> None:
    vm = pool.vm(VCPUs_max=4)
    with pool.store.transaction() as tx:
        tx.update(
            "VM",
            vm,
            {
                "power_state": "Running",
                "is_a_template": True,
                "blocked_operations": {"changing_VCPUs": "no"},
                "current_operations": {"OpaqueRef:task": "changing_VCPUs"},
                # A stale overhead, to see it recomputed.
                "memory_overhead": 1,
            },
        )
    pool.call("VM.set_VCPUs_at_startup", vm, 4)
    record = pool.record("VM", vm)
    assert record["VCPUs_at_startup"] == 4
    assert record["memory_overhead"] == computed_overhead(pool, vm)
    for value in (0, 5):
        assert pool.error("VM.set_VCPUs_at_startup", vm, value) == [
            "INVALID_VALUE",
            ORDER,
            str(value),
        ]
    assert pool.record("VM", vm)["VCPUs_at_startup"] == 4


def test_set_domain_type_sets_the_boot_policy_and_keeps_the_overhead(pool: Pool) -> None:
    vm = pool.vm()
    overhead = pool.record("VM", vm)["memory_overhead"]
    assert pool.error("VM.set_domain_type", vm, "unspecified") == [
        "INVALID_VALUE",
        "domain_type",
        "unspecified",
    ]
    for domain_type, policy in (("pvh", ""), ("hvm", "BIOS order"), ("pv_in_pvh", ""), ("pv", "")):
        pool.call("VM.set_domain_type", vm, domain_type)
        record = pool.record("VM", vm)
        assert (record["domain_type"], record["HVM_boot_policy"]) == (domain_type, policy)
    # A PV VM needs less than the HVM one it was: xapi does not recompute here.
    assert pool.record("VM", vm)["memory_overhead"] == overhead != computed_overhead(pool, vm)


def test_set_hvm_boot_policy_sets_the_domain_type_and_keeps_the_overhead(pool: Pool) -> None:
    vm = pool.vm(domain_type="pvh")
    overhead = pool.record("VM", vm)["memory_overhead"]
    for policy, domain_type in (("", "pv"), ("BIOS order", "hvm"), ("anything", "hvm")):
        pool.call("VM.set_HVM_boot_policy", vm, policy)
        record = pool.record("VM", vm)
        assert (record["HVM_boot_policy"], record["domain_type"]) == (policy, domain_type)
    pool.call("VM.set_HVM_boot_policy", vm, "")
    assert pool.record("VM", vm)["memory_overhead"] == overhead != computed_overhead(pool, vm)


def test_neither_domain_type_setter_checks_the_power_state(pool: Pool) -> None:
    vm = pool.vm()
    pool.call("VM.start", vm, False, False)
    pool.call("VM.set_domain_type", vm, "pvh")
    pool.call("VM.set_HVM_boot_policy", vm, "BIOS order")
    assert pool.record("VM", vm)["domain_type"] == "hvm"
